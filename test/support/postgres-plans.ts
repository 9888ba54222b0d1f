/**
 * What the PostgreSQL adapters' plan tests look at: the statements an adapter runs (recorded as
 * it runs them), the leading column of each index of its tables, and the scans of a statement's
 * plan (`EXPLAIN (FORMAT JSON)`). Each test asserts on them as its tables need.
 */
import type pg from "pg";
import type { PostgresDatabase } from "../../src/store/postgres/postgres-database.js";

export interface Statement {
  sql: string;
  values: unknown[];
}

/**
 * `database` with a pool that records every statement run on it directly (a transaction's run on
 * a client of its own and are not seen), and the list they are recorded in.
 */
export function recordStatements(database: PostgresDatabase): {
  database: PostgresDatabase;
  statements: Statement[];
} {
  const statements: Statement[] = [];
  const watched = new Proxy(database.pool, {
    get(target, key) {
      if (key === "query") {
        return (sql: string, values: unknown[]) => {
          statements.push({ sql, values });
          return target.query(sql, values);
        };
      }
      const value: unknown = Reflect.get(target, key);
      return typeof value === "function" ? (value as () => unknown).bind(target) : value;
    },
  });
  return { database: { ...database, pool: watched }, statements };
}

/** The leading column of every index on `tables`, by index name. */
export async function leadingColumns(
  pool: pg.Pool,
  tables: readonly string[],
): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ index: string; leading: string }>(
    `SELECT index_class.relname AS index, attribute.attname AS leading
     FROM pg_index JOIN pg_class AS index_class ON index_class.oid = pg_index.indexrelid
     JOIN pg_attribute AS attribute
       ON attribute.attrelid = pg_index.indrelid AND attribute.attnum = pg_index.indkey[0]
     WHERE pg_index.indrelid = ANY($1::regclass[])`,
    [tables],
  );
  return new Map(rows.map((row) => [row.index, row.leading]));
}

export interface Scan {
  /** The plan node's type: `Seq Scan`, `Index Scan`, `Bitmap Index Scan`... */
  type: string;
  index?: string;
  condition?: string;
}

/** The scans of `statement`'s plan, as `client` (its settings, its transaction) would run it. */
export async function planScans(client: pg.ClientBase, statement: Statement): Promise<Scan[]> {
  const { rows } = await client.query<{ "QUERY PLAN": unknown }>(
    `EXPLAIN (FORMAT JSON) ${statement.sql}`,
    statement.values,
  );
  return scansOf(rows[0]!["QUERY PLAN"]);
}

/** Every node of an `EXPLAIN (FORMAT JSON)` plan that reads a table or an index. */
function scansOf(plan: unknown): Scan[] {
  const found: Scan[] = [];
  const visit = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== "object" || node === null) return;
    const record = node as Record<string, unknown>;
    if (typeof record["Node Type"] === "string" && /Scan$/.test(record["Node Type"])) {
      const scan: Scan = { type: record["Node Type"] };
      if (typeof record["Index Name"] === "string") scan.index = record["Index Name"];
      if (typeof record["Index Cond"] === "string") scan.condition = record["Index Cond"];
      found.push(scan);
    }
    for (const value of Object.values(record)) visit(value);
  };
  visit(plan);
  return found;
}
