// A small MCP server on stdio, written for the agent tests in another language than the
// node: newline-delimited JSON-RPC (MCP 2025-11-25), two tools over a notes file named by
// the NOTES_FILE environment variable (from the agent's MCP configuration):
//   append_note {note}  appends one line (not idempotent: the tests count lines)
//   count_notes {}      how many lines there are
// Logs go to stderr only.
const fs = require("fs");
const readline = require("readline");

const file = process.env.NOTES_FILE;
const tools = [
  { name: "append_note", description: "Append a note (one short line) to the notes file.",
    inputSchema: { type: "object", properties: { note: { type: "string", pattern: "^[A-Za-z ]{1,24}$" } },
                   required: ["note"], additionalProperties: false } },
  { name: "count_notes", description: "Count the notes.", inputSchema: { type: "object", properties: {} },
    annotations: { readOnlyHint: true, idempotentHint: true } },
];

function send(m) { process.stdout.write(JSON.stringify(m) + "\n"); }
function lines() { try { return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0); } catch (e) { return []; } }

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  let m;
  try { m = JSON.parse(line); } catch (e) { send({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } }); return; }
  if (m.id === undefined) return; // notifications
  const p = m.params || {};
  if (m.method === "initialize")
    send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: "2025-11-25", capabilities: { tools: {} },
                                               serverInfo: { name: "notes", version: "1.0.0" } } });
  else if (m.method === "tools/list") send({ jsonrpc: "2.0", id: m.id, result: { tools } });
  else if (m.method === "ping") send({ jsonrpc: "2.0", id: m.id, result: {} });
  else if (m.method === "tools/call" && p.name === "append_note") {
    const note = (p.arguments || {}).note;
    if (typeof note !== "string" || !/^[A-Za-z ]{1,24}$/.test(note)) {
      send({ jsonrpc: "2.0", id: m.id, error: { code: -32602, message: "append_note needs a note of 1 to 24 letters" } });
      return;
    }
    fs.appendFileSync(file, note.replace(/\n/g, " ") + "\n");
    process.stderr.write(`notes: appended ${JSON.stringify(note)}\n`);
    send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: `noted (${lines().length} notes)` }] } });
  } else if (m.method === "tools/call" && p.name === "count_notes")
    send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: String(lines().length) }] } });
  else if (m.method === "tools/call")
    send({ jsonrpc: "2.0", id: m.id, error: { code: -32602, message: `unknown tool ${p.name}` } });
  else send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: `method not found: ${m.method}` } });
});
