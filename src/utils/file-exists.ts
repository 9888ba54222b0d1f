import { access } from "node:fs/promises";

/** Whether `file` (a file or a folder) can be reached: false for any failure of `access()`. */
export async function fileExists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
