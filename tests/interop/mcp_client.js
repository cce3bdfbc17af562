// The node's own MCP tools through the official TypeScript SDK client (@modelcontextprotocol/sdk,
// pinned in tools/): over Streamable HTTP at /mcp with a bearer token, and over stdio by
// starting `apiary mcp` as a child process, as MCP hosts do. The generate tool's greedy text
// is checked against llama.cpp's continuation of the same prompt (shared/testdata/
// tiny-spm4k-Q8_0.ref.json), on both transports.
//
//   node mcp_client.js URL TOKEN APIARY_BIN HOME MODEL_NAME
//
// Prints "ok NAME" / "FAIL NAME detail" lines and "END" when it ran to the end.
const path = require("path");
const fs = require("fs");
const sdk = path.join(__dirname, "../../tools/node_modules/@modelcontextprotocol/sdk/dist/cjs");
const { Client } = require(path.join(sdk, "client/index.js"));
const { StreamableHTTPClientTransport } = require(path.join(sdk, "client/streamableHttp.js"));
const { StdioClientTransport } = require(path.join(sdk, "client/stdio.js"));

const [url, token, bin, home, model] = process.argv.slice(2);
const shared = process.env.APIARY_SHARED || path.join(__dirname, "../../../shared");
let failures = 0;
function check(name, cond, detail) {
  if (cond) console.log("ok " + name);
  else {
    failures++;
    console.log("FAIL " + name + " " + (detail === undefined ? "" : JSON.stringify(detail).slice(0, 800)));
  }
}

async function exercise(label, client, ref) {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const n of ["generate", "offers", "peers", "balance", "receipts"])
    check(`${label}: tools/list has ${n}`, names.includes(n), names);
  const gen = tools.find((t) => t.name === "generate");
  check(`${label}: generate's input schema requires model and prompt`,
        gen && JSON.stringify(gen.inputSchema.required) === JSON.stringify(["model", "prompt"]), gen);
  if (model && ref) {
    const r = await client.callTool({ name: "generate", arguments: { model, prompt: ref.prompt,
                                      max_tokens: ref.greedy_ids.length, temperature: 0, seed: 1 } });
    check(`${label}: generate is llama.cpp's greedy continuation`, !r.isError && r.content[0].text === ref.generated_text,
          { got: r.content && r.content[0].text, want: ref.generated_text });
    check(`${label}: generate says who answered and the token counts`,
          r.structuredContent && r.structuredContent.completion_tokens === ref.greedy_ids.length &&
          typeof r.structuredContent.node_id === "string", r.structuredContent);
  }
  const bad = await client.callTool({ name: "generate", arguments: { model: "no-such-model-anywhere", prompt: "x", max_tokens: 2 } });
  check(`${label}: a model nobody has is a tool error with the reason`, bad.isError === true && /model/i.test(bad.content[0].text), bad);
  const offers = await client.callTool({ name: "offers", arguments: {} });
  check(`${label}: offers answers a list`, !offers.isError && Array.isArray(offers.structuredContent.offers), offers);
  const rec = await client.callTool({ name: "receipts", arguments: { role: "provider" } });
  check(`${label}: receipts answers a list`, !rec.isError && Array.isArray(rec.structuredContent.receipts), rec);
  const badRole = await client.callTool({ name: "receipts", arguments: { role: "thief" } });
  check(`${label}: a bad role is a tool error`, badRole.isError === true, badRole);
  let code = 0;
  try {
    await client.callTool({ name: "no_such_tool", arguments: {} });
  } catch (e) {
    code = e.code;
  }
  check(`${label}: an unknown tool is a protocol error -32602`, code === -32602, code);
  code = 0;
  try {
    await client.callTool({ name: "generate", arguments: { model: 7, prompt: "x" } });
  } catch (e) {
    code = e.code;
  }
  check(`${label}: an argument of the wrong type is -32602`, code === -32602, code);
  const res = await client.readResource({ uri: "apiary://receipts" });
  let parsed = null;
  try {
    parsed = JSON.parse(res.contents[0].text);
  } catch (e) {}
  check(`${label}: resource apiary://receipts is JSON`, parsed && Array.isArray(parsed.receipts), res);
  code = 0;
  try {
    await client.readResource({ uri: "apiary://nothing" });
  } catch (e) {
    code = e.code;
  }
  check(`${label}: an unknown resource is -32002`, code === -32002, code);
}

async function main() {
  let ref = null;
  try {
    ref = JSON.parse(fs.readFileSync(path.join(shared, "testdata/tiny-spm4k-Q8_0.ref.json"))).greedy[0];
  } catch (e) {}
  // Over HTTP, with the token.
  const http = new Client({ name: "apiary-test", version: "1.0.0" });
  await http.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: "Bearer " + token } } }));
  check("http: a session id was given", typeof http.transport.sessionId === "string" && http.transport.sessionId.length === 64,
        http.transport.sessionId);
  check("http: server is apiary, revision 2025-11-25", http.getServerVersion().name === "apiary" &&
        http.transport.protocolVersion === "2025-11-25", [http.getServerVersion(), http.transport.protocolVersion]);
  await exercise("http", http, ref);
  await http.close();
  // Without a token, nothing.
  let refused = false;
  try {
    const c = new Client({ name: "apiary-test", version: "1.0.0" });
    await c.connect(new StreamableHTTPClientTransport(new URL(url)));
    await c.close();
  } catch (e) {
    refused = /401|Unauthorized|token/i.test(String(e));
  }
  check("http: no token, no session (401)", refused);
  // Over stdio, as a child process.
  const stdio = new Client({ name: "apiary-test", version: "1.0.0" });
  await stdio.connect(new StdioClientTransport({ command: bin, args: ["mcp", "--home", home], stderr: "pipe" }));
  check("stdio: server is apiary", stdio.getServerVersion().name === "apiary", stdio.getServerVersion());
  await exercise("stdio", stdio, ref);
  await stdio.close();
  console.log("END");
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.log("FAIL the client crashed " + JSON.stringify(String(e.stack || e)));
  process.exit(1);
});
