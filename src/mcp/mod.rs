//! `agentcred mcp`: a Model Context Protocol server on stdio (CONTRACT section 12).
//!
//! Why hand-written and not the `rmcp` SDK: the server needs five methods (`initialize`,
//! `server/discover`, `tools/list`, `tools/call`, `ping`) over newline-delimited JSON-RPC,
//! answered one at a time by synchronous store code. A loop over `serde_json` does that in
//! a few hundred lines with no new dependency, no async runtime and nothing between the
//! tools and stdout that could write there; the tool list is built per call from the
//! agent's profile, which the SDK's macros cannot express anyway.
//!
//! Both protocol revisions are served from one process (a "dual-era" server in the words
//! of the 2026-07-28 revision): a request whose `params._meta` carries
//! `io.modelcontextprotocol/protocolVersion` is served statelessly under 2026-07-28
//! (`resultType`, `serverInfo` in the result's `_meta`, cache hints on lists,
//! `UnsupportedProtocolVersionError` for other versions); anything else is the
//! `initialize`-handshake protocol of 2025-11-25 and before.
//!
//! stdout carries only JSON-RPC messages, one per line; diagnostics go to stderr.

pub mod run;
pub mod tools;
pub mod upstream;

use std::io::{self, BufRead, Read, Write};

use serde_json::{Map, Value, json};

/// The stateless revision.
pub const MODERN_VERSION: &str = "2026-07-28";
/// The handshake revisions, newest first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// The longest message read; a longer line is refused and skipped.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// How long a client may keep `tools/list` and `server/discover` (2026-07-28 cache hint):
/// the list changes only when the agent's profile does.
const LIST_TTL_MS: u64 = 60_000;

/// A tool as `tools/list` describes it.
#[derive(Clone, Debug)]
pub struct Tool {
    pub name: &'static str,
    pub title: &'static str,
    pub description: String,
    pub input_schema: Value,
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

impl Tool {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.read_only,
                "destructiveHint": self.destructive,
                "idempotentHint": self.idempotent,
                "openWorldHint": self.open_world,
            },
        })
    }
}

/// What a tool call produced: structured content, or a refusal the model is shown.
#[derive(Debug)]
pub enum Outcome {
    Done(Value),
    Refused(String),
}

/// The tools behind the protocol.
pub trait Handler {
    /// The tools, in a stable order.
    fn tools(&mut self) -> Vec<Tool>;
    /// Run one tool. `None` when there is no such tool (a protocol error, not a refusal).
    fn call(&mut self, name: &str, arguments: &Map<String, Value>) -> Option<Outcome>;
    /// Guidance for the model, sent at `initialize` and `server/discover`.
    fn instructions(&self) -> String;
}

fn server_info() -> Value {
    json!({
        "name": "agentcred",
        "title": "agentcred",
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// A JSON-RPC error; `data` only where the protocol defines it.
struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }
}

/// Which protocol a request is served under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Era {
    /// `initialize` handshake (2025-11-25 and before).
    Legacy,
    /// Per-request `_meta` (2026-07-28).
    Modern,
}

/// Serve requests from `input` until it ends, writing responses to `output`.
pub fn serve(
    handler: &mut impl Handler,
    mut input: impl BufRead,
    mut output: impl Write,
) -> io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = input
            .by_ref()
            .take(MAX_MESSAGE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_MESSAGE && line.last() != Some(&b'\n') {
            skip_line(&mut input)?;
            let reply = error_response(
                Value::Null,
                RpcError::new(INVALID_REQUEST, "message too long"),
            );
            write_message(&mut output, &reply)?;
            continue;
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let reply = match serde_json::from_slice::<Value>(text) {
            Ok(message) => handle(handler, message),
            Err(_) => Some(error_response(
                Value::Null,
                RpcError::new(PARSE_ERROR, "parse error: not a JSON message"),
            )),
        };
        if let Some(reply) = reply {
            write_message(&mut output, &reply)?;
        }
    }
}

fn skip_line(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = memchr::memchr(b'\n', buf) {
            input.consume(i + 1);
            return Ok(());
        }
        let len = buf.len();
        input.consume(len);
    }
}

fn write_message(output: &mut impl Write, message: &Value) -> io::Result<()> {
    // serde_json escapes control characters, so a message is always one line.
    let mut bytes = serde_json::to_vec(message).map_err(io::Error::other)?;
    bytes.push(b'\n');
    output.write_all(&bytes)?;
    output.flush()
}

fn error_response(id: Value, error: RpcError) -> Value {
    let mut body = json!({ "code": error.code, "message": error.message });
    if let Some(data) = error.data {
        body["data"] = data;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": body })
}

/// One message in, at most one out (notifications and client responses get none).
fn handle(handler: &mut impl Handler, message: Value) -> Option<Value> {
    let Value::Object(message) = message else {
        return Some(error_response(
            Value::Null,
            RpcError::new(
                INVALID_REQUEST,
                "a message must be a JSON object (batches are not supported)",
            ),
        ));
    };
    let Some(method) = message.get("method") else {
        // A response to a request we never send, or garbage: nothing to answer.
        return None;
    };
    let id = match message.get("id") {
        None => return None,
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        Some(_) => {
            return Some(error_response(
                Value::Null,
                RpcError::new(INVALID_REQUEST, "a request id must be a string or a number"),
            ));
        }
    };
    let Some(method) = method.as_str() else {
        return Some(error_response(
            id,
            RpcError::new(INVALID_REQUEST, "method must be a string"),
        ));
    };
    let empty = Map::new();
    let params = match message.get("params") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(params)) => params,
        Some(_) => {
            return Some(error_response(
                id,
                RpcError::new(INVALID_PARAMS, "params must be an object"),
            ));
        }
    };
    let result = era(params).and_then(|era| dispatch(handler, era, method, params));
    Some(match result {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(error) => error_response(id, error),
    })
}

/// The era a request declares: modern when its `_meta` names a protocol version.
fn era(params: &Map<String, Value>) -> Result<Era, RpcError> {
    let meta = match params.get("_meta") {
        None | Some(Value::Null) => return Ok(Era::Legacy),
        Some(Value::Object(meta)) => meta,
        Some(_) => return Err(RpcError::new(INVALID_PARAMS, "_meta must be an object")),
    };
    let Some(version) = meta.get(META_VERSION) else {
        return Ok(Era::Legacy);
    };
    let Some(version) = version.as_str() else {
        return Err(RpcError::new(
            INVALID_PARAMS,
            format!("{META_VERSION} must be a string"),
        ));
    };
    if version != MODERN_VERSION {
        return Err(RpcError {
            code: UNSUPPORTED_PROTOCOL_VERSION,
            message: "Unsupported protocol version".into(),
            data: Some(json!({ "supported": [MODERN_VERSION], "requested": version })),
        });
    }
    if !meta.get(META_CAPABILITIES).is_some_and(Value::is_object) {
        return Err(RpcError::new(
            INVALID_PARAMS,
            format!("_meta must carry {META_CAPABILITIES} (an object)"),
        ));
    }
    Ok(Era::Modern)
}

fn dispatch(
    handler: &mut impl Handler,
    era: Era,
    method: &str,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let mut result = match (era, method) {
        (_, "initialize") => initialize(handler, params),
        (Era::Legacy, "ping") => json!({}),
        (Era::Modern, "server/discover") => json!({
            "supportedVersions": [MODERN_VERSION],
            "capabilities": { "tools": { "listChanged": false } },
            "instructions": handler.instructions(),
        }),
        (Era::Legacy, "server/discover") => {
            return Err(RpcError::new(
                INVALID_PARAMS,
                format!("server/discover needs {META_VERSION} and {META_CAPABILITIES} in _meta"),
            ));
        }
        (_, "tools/list") => {
            let tools: Vec<Value> = handler.tools().iter().map(Tool::to_json).collect();
            json!({ "tools": tools })
        }
        (_, "tools/call") => call_tool(handler, params)?,
        _ => {
            let shown: String = method.chars().take(64).collect();
            return Err(RpcError::new(
                METHOD_NOT_FOUND,
                format!("method not found: {}", crate::util::output::escape(&shown)),
            ));
        }
    };
    if era == Era::Modern
        && let Value::Object(fields) = &mut result
    {
        fields.insert("resultType".into(), json!("complete"));
        if matches!(method, "tools/list" | "server/discover") {
            fields.insert("ttlMs".into(), json!(LIST_TTL_MS));
            // The list depends on this user's store: no shared cache may keep it.
            fields.insert("cacheScope".into(), json!("private"));
        }
        fields.insert("_meta".into(), json!({ META_SERVER_INFO: server_info() }));
    }
    Ok(result)
}

/// The legacy handshake: agree on the client's version when it is one we speak, else
/// offer the newest handshake version.
fn initialize(handler: &mut impl Handler, params: &Map<String, Value>) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .and_then(|v| LEGACY_VERSIONS.iter().find(|known| **known == v))
        .copied()
        .unwrap_or(LEGACY_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": server_info(),
        "instructions": handler.instructions(),
    })
}

fn call_tool(handler: &mut impl Handler, params: &Map<String, Value>) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, "tools/call needs a tool name"))?;
    let empty = Map::new();
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(arguments)) => arguments,
        Some(_) => return Err(RpcError::new(INVALID_PARAMS, "arguments must be an object")),
    };
    let outcome = handler.call(name, arguments).ok_or_else(|| {
        let shown: String = name.chars().take(64).collect();
        RpcError::new(
            INVALID_PARAMS,
            format!("unknown tool: {}", crate::util::output::escape(&shown)),
        )
    })?;
    Ok(match outcome {
        Outcome::Done(structured) => {
            let text = serde_json::to_string_pretty(&structured).unwrap_or_default();
            json!({
                "content": [{ "type": "text", "text": text }],
                "structuredContent": structured,
                "isError": false,
            })
        }
        Outcome::Refused(message) => json!({
            "content": [{ "type": "text", "text": message }],
            "isError": true,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Handler for Echo {
        fn tools(&mut self) -> Vec<Tool> {
            vec![Tool {
                name: "echo",
                title: "Echo",
                description: "echo".into(),
                input_schema: json!({ "type": "object" }),
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false,
            }]
        }
        fn call(&mut self, name: &str, arguments: &Map<String, Value>) -> Option<Outcome> {
            (name == "echo").then(|| match arguments.get("refuse") {
                Some(_) => Outcome::Refused("no".into()),
                None => Outcome::Done(Value::Object(arguments.clone())),
            })
        }
        fn instructions(&self) -> String {
            "be nice".into()
        }
    }

    fn exchange(input: &str) -> Vec<Value> {
        let mut out = Vec::new();
        serve(&mut Echo, input.as_bytes(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    const MODERN_META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

    #[test]
    fn legacy_handshake_then_tools() {
        let replies = exchange(concat!(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "\n\n",
            r#"{"jsonrpc":"2.0","id":"b","method":"tools/list"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#,
        ));
        assert_eq!(replies.len(), 4, "{replies:?}");
        assert_eq!(replies[0]["result"]["protocolVersion"], "2025-06-18");
        assert_eq!(replies[0]["result"]["serverInfo"]["name"], "agentcred");
        assert_eq!(replies[1]["id"], "b");
        assert_eq!(
            replies[1]["result"]["tools"][0]["annotations"]["readOnlyHint"],
            true
        );
        assert!(replies[1]["result"].get("resultType").is_none());
        assert_eq!(replies[2]["result"]["structuredContent"]["x"], 1);
        assert_eq!(replies[2]["result"]["isError"], false);
        assert_eq!(replies[3]["result"], json!({}));
    }

    #[test]
    fn an_unknown_legacy_version_gets_the_newest_handshake_version() {
        let replies = exchange(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2099-01-01"}}"#,
        );
        assert_eq!(replies[0]["result"]["protocolVersion"], "2025-11-25");
    }

    #[test]
    fn modern_requests_are_stateless_and_stamped() {
        let input = format!(
            "{}\n{}\n{}\n",
            format_args!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{{{MODERN_META}}}}}"#
            ),
            format_args!(
                r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{{{MODERN_META}}}}}"#
            ),
            format_args!(
                r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"echo","arguments":{{"refuse":true}},{MODERN_META}}}}}"#
            ),
        );
        let replies = exchange(&input);
        assert_eq!(
            replies[0]["result"]["supportedVersions"],
            json!(["2026-07-28"])
        );
        assert_eq!(replies[0]["result"]["resultType"], "complete");
        assert_eq!(replies[0]["result"]["cacheScope"], "private");
        assert_eq!(
            replies[0]["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            "agentcred"
        );
        assert_eq!(replies[1]["result"]["ttlMs"], LIST_TTL_MS);
        assert_eq!(replies[2]["result"]["isError"], true);
        assert_eq!(replies[2]["result"]["resultType"], "complete");
        assert!(replies[2]["result"].get("ttlMs").is_none());
    }

    #[test]
    fn protocol_errors() {
        let input = [
            "not json",
            "[1,2]",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"resources/list"}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2030-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"server/discover"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":6,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        ]
        .join("\n");
        let replies = exchange(&input);
        let codes: Vec<i64> = replies
            .iter()
            .map(|r| r["error"]["code"].as_i64().unwrap())
            .collect();
        assert_eq!(
            codes,
            [
                -32700, -32600, -32602, -32601, -32022, -32602, -32602, -32600, -32601
            ]
        );
        assert_eq!(
            replies[4]["error"]["data"]["supported"],
            json!(["2026-07-28"])
        );
        assert_eq!(replies[4]["error"]["data"]["requested"], "2030-01-01");
    }

    #[test]
    fn an_overlong_line_is_refused_and_the_next_one_served() {
        let input = format!(
            "{}\n{}\n",
            "x".repeat(MAX_MESSAGE + 10),
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#
        );
        let replies = exchange(&input);
        assert_eq!(replies[0]["error"]["code"], -32600);
        assert_eq!(replies[1]["result"], json!({}));
    }
}
