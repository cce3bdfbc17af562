#!/usr/bin/env node
// A tiny MCP server on stdio (newline-delimited JSON-RPC), written without any SDK, for
// tests/unit/test_mcp_client.c: it exercises the client's stdio transport with real
// processes, pipes and timing. Tools:
//   echo {text}            the text back
//   add {a, b}             "a+b=SUM"
//   env {name}             the variable's value and this process's arguments
//   sleep {ms}             answers after ms (the client's timeout, and notifications/cancelled)
//   cancelled              the request ids cancelled so far (JSON text)
//   crash {code}           exits with code before answering (a dead child)
//   big {bytes}            answers with one line of about that many bytes (the line cap)
//   garbage                writes a line that is not JSON, then answers "after garbage"
//   elicit {required}      asks the client elicitation/create (a form with defaults; with
//                          required true, a required field without a default) and returns
//                          the client's answer as JSON text
//   ask {method}           sends the client a request of that method (ping, roots/list,
//                          sampling/createMessage) and returns its answer as JSON text
//   notify                 sends progress and log notifications, then answers "notified"
//   fail                   a tool error (isError true)
// tools/list comes in two pages (cursor "page2"). Arguments: --stubborn ignores the end of
// stdin and SIGTERM (only SIGKILL ends it). Logs go to stderr, as the spec asks.
"use strict";
const stubborn = process.argv.includes("--stubborn");
process.stderr.write("echo server: started\n");
if (stubborn) process.on("SIGTERM", () => process.stderr.write("echo server: ignoring SIGTERM\n"));

const tools = [
  ["echo", {text: {type: "string"}}], ["add", {a: {type: "number"}, b: {type: "number"}}], ["env", {name: {type: "string"}}],
  ["sleep", {ms: {type: "integer"}}], ["cancelled", {}], ["crash", {code: {type: "integer"}}], ["big", {bytes: {type: "integer"}}],
  ["garbage", {}], ["elicit", {required: {type: "boolean"}}], ["ask", {method: {type: "string"}}], ["notify", {}], ["fail", {}],
].map(([name, props]) => ({name, description: "test tool " + name, inputSchema: {type: "object", properties: props}}));

const cancelled = [];
const waiting = new Map(); // our requests to the client: id -> callback
let nextId = 1;

function send(m) { process.stdout.write(JSON.stringify(m) + "\n"); }
function text(t, isError) { return {content: [{type: "text", text: t}], ...(isError ? {isError: true} : {})}; }
function ask(method, params, cb) { const id = "s" + nextId++; waiting.set(id, cb); send({jsonrpc: "2.0", id, method, params}); }

function callTool(id, name, a) {
  const done = (r) => send({jsonrpc: "2.0", id, result: r});
  switch (name) {
    case "echo": return done(text(String(a.text)));
    case "add": return done(text(`${a.a}+${a.b}=${a.a + a.b}`));
    case "env": return done(text(JSON.stringify({value: process.env[a.name] ?? null, argv: process.argv.slice(2), pid: process.pid})));
    case "sleep": return setTimeout(() => done(text("slept")), a.ms);
    case "cancelled": return done(text(JSON.stringify(cancelled)));
    case "crash": process.stderr.write("echo server: crashing on purpose\n"); return process.exit(a.code ?? 3);
    case "big": return done(text("x".repeat(a.bytes)));
    case "garbage": process.stdout.write("this is not JSON\n"); return done(text("after garbage"));
    case "elicit": {
      const props = {name: {type: "string", default: "Ann"}, age: {type: "integer", default: 42}, ok: {type: "boolean", default: true},
                     color: {type: "string", enum: ["red", "blue"], default: "blue"}, note: {type: "string"}};
      const required = a.required ? ["name", "note"] : ["name"];
      return ask("elicitation/create", {message: "Fill this in", requestedSchema: {type: "object", properties: props, required}},
                 (ans) => done(text(JSON.stringify(ans))));
    }
    case "ask": return ask(a.method, {}, (ans) => done(text(JSON.stringify(ans))));
    case "notify":
      send({jsonrpc: "2.0", method: "notifications/message", params: {level: "info", data: "working"}});
      send({jsonrpc: "2.0", method: "notifications/progress", params: {progressToken: 1, progress: 50, total: 100}});
      return done(text("notified"));
    case "fail": return done(text("it failed on purpose", true));
    default: return send({jsonrpc: "2.0", id, error: {code: -32602, message: "Unknown tool: " + name}});
  }
}

function handle(m) {
  if (m.method === undefined) { // a response to one of our requests
    const cb = waiting.get(m.id);
    if (cb) { waiting.delete(m.id); cb(m); }
    return;
  }
  const p = m.params || {};
  if (m.id === undefined) { // a notification
    if (m.method === "notifications/cancelled") cancelled.push(p.requestId);
    return;
  }
  switch (m.method) {
    case "initialize":
      return send({jsonrpc: "2.0", id: m.id, result: {protocolVersion: "2025-11-25", capabilities: {tools: {}},
                   serverInfo: {name: "echo", version: "1.0.0"}, _clientCaps: p.capabilities}});
    case "ping": return send({jsonrpc: "2.0", id: m.id, result: {}});
    case "tools/list":
      if (p.cursor === "page2") return send({jsonrpc: "2.0", id: m.id, result: {tools: tools.slice(6)}});
      return send({jsonrpc: "2.0", id: m.id, result: {tools: tools.slice(0, 6), nextCursor: "page2"}});
    case "tools/call": return callTool(m.id, p.name, p.arguments || {});
    default: return send({jsonrpc: "2.0", id: m.id, error: {code: -32601, message: "Method not found"}});
  }
}

let buf = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (!line.trim()) continue;
    let m;
    try { m = JSON.parse(line); } catch (e) { send({jsonrpc: "2.0", id: null, error: {code: -32700, message: "Parse error"}}); continue; }
    handle(m);
  }
});
process.stdin.on("end", () => {
  process.stderr.write("echo server: stdin closed\n");
  if (stubborn) setInterval(() => {}, 1000); else process.exit(0);
});
