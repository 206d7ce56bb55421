#!/usr/bin/env node
// The official Phoenix JS client (npm `phoenix`, V2 serializer) against a device socket.
//
//   PHOENIX_PARAMS='{"token":"…","external_id":"…","name":"…","public_key":"…"}' \
//     node phoenix_client.js ws://127.0.0.1:8000/client [--topic client] [--expect init]
//       [--user-agent "…"] [--timeout-ms 10000]
//
// Connects `new Socket(url, {transport, params})` (the client appends `/websocket` and
// `vsn=2.0.0`), joins the topic, sends one heartbeat (`socket.ping`) once joined, and waits for
// the heartbeat reply and one push of each `--expect` event. Prints one JSON object per line:
//   {"type":"connect","url":…,"vsn":…}       the endpoint (without the query's secrets)
//   {"type":"frame","v2":true,…}             every frame received (`v2`: it was a 5-element array)
//   {"type":"joined","response":…}           join ok (or {"type":"join_error",…}: exit 1)
//   {"type":"push","event":…,"payload":…}    each expected push
//   {"type":"heartbeat","rtt_ms":…}          the heartbeat reply arrived
//   {"type":"done"}                          exit 0; {"type":"timeout","missing":[…]}: exit 1
//
// Node has no global WebSocket (before 22), so the transport is `ws`; the subclass only adds the
// User-Agent header a device sends (the sockets refuse a connect without one, protocol.md §2.3).
"use strict";

const WebSocket = require("ws");
const { Serializer, Socket } = require("phoenix");

function parseArgs(argv) {
  const args = { url: null, topic: "client", expect: [], userAgent: "", timeoutMs: 10000 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--topic") args.topic = argv[++i];
    else if (arg === "--expect") args.expect.push(argv[++i]);
    else if (arg === "--user-agent") args.userAgent = argv[++i];
    else if (arg === "--timeout-ms") args.timeoutMs = Number(argv[++i]);
    else if (!args.url) args.url = arg;
    else throw new Error(`unexpected argument ${arg}`);
  }
  if (!args.url) throw new Error("usage: phoenix_client.js <ws://host:port/client> [options]");
  return args;
}

const args = parseArgs(process.argv.slice(2));
const params = JSON.parse(process.env.PHOENIX_PARAMS || "{}");
const userAgent = args.userAgent || "Mac OS/14.5 (arm64) connlib/1.4.0";

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

class Transport extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: { "User-Agent": userAgent } });
  }
}

// Report every frame as received; `v2` says whether it was a V2 array frame.
function decode(raw, callback) {
  let v2 = false;
  try {
    const parsed = JSON.parse(raw);
    v2 = Array.isArray(parsed) && parsed.length === 5;
  } catch (_) {
    // not JSON: the default decoder will fail the same way
  }
  Serializer.decode(raw, (msg) => {
    emit({ type: "frame", v2, ...msg });
    callback(msg);
  });
}

const socket = new Socket(args.url, { transport: Transport, params, decode });
const endpoint = new URL(socket.endPointURL());
emit({
  type: "connect",
  url: `${endpoint.protocol}//${endpoint.host}${endpoint.pathname}`,
  vsn: endpoint.searchParams.get("vsn"),
});

const missing = new Set(["heartbeat", ...args.expect]);
let finished = false;

function finish(code, obj) {
  if (finished) return;
  finished = true;
  emit(obj);
  socket.disconnect(() => process.exit(code));
  setTimeout(() => process.exit(code), 1000).unref();
}

function arrived(what) {
  missing.delete(what);
  if (missing.size === 0) finish(0, { type: "done" });
}

const timer = setTimeout(
  () => finish(1, { type: "timeout", missing: [...missing] }),
  args.timeoutMs,
);
timer.unref();

socket.onError((error) => emit({ type: "socket_error", message: String(error && error.message) }));
socket.onClose((event) => {
  emit({ type: "close", code: event && event.code });
  if (!finished) finish(1, { type: "closed_early", missing: [...missing] });
});

const channel = socket.channel(args.topic, {});
for (const event of args.expect) {
  channel.on(event, (payload) => {
    emit({ type: "push", event, payload });
    arrived(event);
  });
}

socket.connect();
channel
  .join()
  .receive("ok", (response) => {
    emit({ type: "joined", response });
    const sent = socket.ping((rtt) => {
      emit({ type: "heartbeat", rtt_ms: rtt });
      arrived("heartbeat");
    });
    if (!sent) finish(1, { type: "error", reason: "heartbeat not sent" });
  })
  .receive("error", (response) => finish(1, { type: "join_error", response }))
  .receive("timeout", () => finish(1, { type: "join_timeout" }));
