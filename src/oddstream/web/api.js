/* The tote board's client of the oddstream HTTP API. */

/** One JSON request. Resolves to the answer's JSON; rejects with an Error whose message
 *  says what went wrong (the API's `message`, or why the server could not be asked), and
 *  whose `status` and `code` are the HTTP status and the API's `error`. `key` is sent as
 *  X-API-Key when given (the admin commands). */
export async function api(method, path, body, { key = "", timeoutMs = 8000 } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["X-API-Key"] = key;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: abort.signal,
      cache: "no-store",
    });
  } catch (err) {
    throw new Error(err.name === "AbortError" ? "the server did not answer in time" : "cannot reach the server");
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const err = new Error(data && data.message ? data.message : `HTTP ${response.status}`);
    err.status = response.status;
    err.code = data && data.error;
    throw err;
  }
  return data;
}
