/* A small client of the graphql-transport-ws protocol (the one GraphQL subscriptions
 * speak over WebSocket: connection_init → connection_ack, subscribe → next… → complete),
 * for one subscription, reconnecting after a drop. No library and no build step.
 *
 * The protocol: https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md
 */

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

/** Follow `query` (with `variables`) at `path` on this page's host. Callbacks:
 *  onOpen()        subscribed again (after the first connection or a reconnection: the
 *                  caller resets what it shows if the subscription replays the state),
 *  onData(data)    each `next` payload's data,
 *  onState(state)  "live" | "connecting" | "error" with a reason (a GraphQL error ends the
 *                  subscription; it is retried like a drop).
 *  Returns { close() }. */
export function subscribe(path, query, variables, { onOpen, onData, onState }) {
  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
  let socket = null;
  let closed = false;
  let retryMs = RETRY_MIN_MS;
  let retryTimer = null;

  function connect() {
    onState("connecting");
    socket = new WebSocket(url, "graphql-transport-ws");
    const current = socket;
    current.addEventListener("open", () => {
      current.send(JSON.stringify({ type: "connection_init", payload: {} }));
    });
    current.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      switch (message.type) {
        case "connection_ack":
          current.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
          onOpen();
          onState("live");
          break;
        case "next":
          // the wait before a reconnection starts over once the subscription delivers,
          // not at the acknowledgement: a server that accepts the connection and refuses
          // the subscription each time (its subscriber cap) is asked ever later
          if (message.payload && message.payload.data) {
            retryMs = RETRY_MIN_MS;
            onData(message.payload.data);
          }
          if (message.payload && message.payload.errors) onState("error", message.payload.errors[0].message);
          break;
        case "ping":
          current.send(JSON.stringify({ type: "pong" }));
          break;
        case "error":
          onState("error", (message.payload && message.payload[0] && message.payload[0].message) || "error");
          current.close(1000, "subscription failed");
          break;
        case "complete":
          current.close(1000, "subscription complete");
          break;
        default:
          break;
      }
    });
    current.addEventListener("close", () => {
      if (socket !== current) return;
      socket = null;
      if (closed) return;
      onState("connecting");
      retryTimer = setTimeout(connect, retryMs);
      retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
    });
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(retryTimer);
      if (socket) socket.close(1000, "page closed");
    },
  };
}
