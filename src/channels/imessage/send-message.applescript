-- Sends one iMessage. Usage: osascript send-message.applescript buddy|chat <recipient> <text>
-- buddy: the recipient is a handle (+15551234567, someone@example.com);
-- chat: the recipient is a chat's guid (iMessage;+;chat123456789).
-- The recipient and the text arrive as arguments and are never part of the script's source.
-- dispatch runs a copy of this script kept in send-message.ts; a test keeps the two the same.
on run argv
	if (count of argv) is not 3 then error "expected 3 arguments: buddy|chat, the recipient, the text" number 2
	set theKind to item 1 of argv
	set theRecipient to item 2 of argv
	set theText to item 3 of argv
	tell application "Messages"
		if theKind is "chat" then
			send theText to chat id theRecipient
		else if theKind is "buddy" then
			send theText to buddy theRecipient of (1st account whose service type = iMessage)
		else
			error "the first argument must be buddy or chat, got " & theKind number 2
		end if
	end tell
end run
