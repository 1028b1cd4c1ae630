//! `agentcred mcp` driven by clients we did not write (the official Python SDK and the MCP
//! Inspector CLI) and by raw JSON-RPC lines, under both protocol revisions. Whatever the
//! arguments, no response, log line or audit line carries a value, and stdout carries
//! only JSON-RPC.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{TestEnv, stderr_of, stdout_of};
use serde_json::{Value, json};

/// The agent's key and a key it is not allowed. Long enough to be masked.
const API_KEY: &str = "sk-live-SECRETVALUE-0123456789abcdef";
const OTHER_KEY: &str = "ot-SECRETVALUE-OTHER-987654321";

/// Every form of a value that must never reach the model, a log or the audit log.
fn forbidden() -> Vec<String> {
    let mut out = Vec::new();
    for value in [API_KEY, OTHER_KEY] {
        out.push(value.to_string());
        out.push(base64::engine::general_purpose::STANDARD.encode(value));
    }
    out.push("SECRETVALUE".into());
    out
}

fn assert_no_value(what: &str, text: &str) {
    for value in forbidden() {
        assert!(
            !text.contains(&value),
            "{what} carries a value ({value}):\n{text}"
        );
    }
}

/// A plain-HTTP upstream on 127.0.0.1 (tests/support/mcp_upstream.py), stopped on drop.
struct Upstream {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Upstream {
    fn start(dir: &Path) -> Upstream {
        let dir = dir.join("upstream");
        fs::create_dir_all(&dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mcp_upstream.py");
        let log = fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new("python3")
            .arg(script)
            .arg(&dir)
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Ok(text) = fs::read_to_string(dir.join("port")) {
                break text.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "the upstream did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Upstream { child, dir, port }
    }

    fn requests(&self) -> Vec<Value> {
        fs::read_to_string(self.dir.join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Fixture {
    env: TestEnv,
    upstream: Upstream,
}

impl std::ops::Deref for Fixture {
    type Target = TestEnv;
    fn deref(&self) -> &TestEnv {
        &self.env
    }
}

/// A store with two credentials routed to the loopback upstream (`x-api-key` header), an
/// agent `llm` allowed one of them, and three declared commands: one printing the whole
/// environment, one printing the key encoded, one taking extra arguments.
fn fixture() -> Fixture {
    let env = TestEnv::init();
    let upstream = Upstream::start(env.dir.path());
    let url = format!("http://127.0.0.1:{}/v1", upstream.port);
    for (name, value) in [("api-key", API_KEY), ("other-key", OTHER_KEY)] {
        env.cmd()
            .args(["add", name, "--upstream", &url, "--header", "x-api-key: {}"])
            .write_stdin(value)
            .assert()
            .success();
    }
    let bin = env.dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let script = |name: &str, body: &str| -> PathBuf {
        let path = bin.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let show_env = script("show-env", "env | sort");
    let encode = script(
        "encode",
        "printf '%s' \"$API_KEY\" | base64; printf 'key=%s\\n' \"$API_KEY\" >&2; exit 3",
    );
    let echo = script("echo-args", "printf '[%s]' \"$@\"; echo");
    env.cmd()
        .args(["agent", "add", "llm", "--allow", "api-key"])
        .assert()
        .success();
    for (name, path, flags) in [
        ("show-env", &show_env, &["--read-only"][..]),
        ("encode", &encode, &[][..]),
        ("echo-args", &echo, &["--allow-args", "--read-only"][..]),
    ] {
        env.cmd()
            .args(["agent", "command", "add", "llm", name])
            .args(flags)
            .arg("--")
            .arg(path)
            .arg("--fixed")
            .assert()
            .success();
    }
    Fixture { env, upstream }
}

fn audit_lines(env: &TestEnv) -> Vec<Value> {
    fs::read_to_string(env.store.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn mcp_events(env: &TestEnv) -> Vec<Value> {
    audit_lines(env)
        .into_iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("mcp-")))
        .collect()
}

/// Tool calls that try, each in its own way, to get a value out.
fn hostile_calls() -> Vec<Value> {
    vec![
        json!({ "name": "list_credentials", "arguments": {} }),
        json!({ "name": "run", "arguments": { "command": "show-env" } }),
        json!({ "name": "run", "arguments": { "command": "encode" } }),
        json!({ "name": "run", "arguments": { "command": "cat-store" } }),
        json!({ "name": "run", "arguments": { "command": "show-env", "args": ["-0"] } }),
        json!({ "name": "run", "arguments": { "command": "echo-args", "args": ["$API_KEY", "<agentcred:api-key>"] } }),
        json!({ "name": "http_request", "arguments": { "credential": "other-key", "method": "GET", "path": "/" } }),
        json!({ "name": "http_request", "arguments": { "credential": "OTHER_KEY", "method": "POST", "path": "/../x", "body": "<agentcred:other-key>" } }),
        json!({ "name": "http_request", "arguments": { "credential": "api-key", "method": "POST", "path": "/chat", "body": "say <agentcred:api-key>" } }),
        json!({ "name": "http_request", "arguments": { "credential": "api-key", "method": "GET", "path": "/a/../../admin" } }),
        json!({ "name": "http_request", "arguments": { "credential": "api-key", "method": "GET", "path": "/echo", "headers": { "X-Api-Key": "mine" } } }),
        json!({ "name": "http_request", "arguments": { "credential": "api-key", "method": "POST", "path": "/echo", "query": { "q": "a b" }, "headers": { "Content-Type": "text/plain" }, "body": "hello" } }),
        json!({ "name": "http_request", "arguments": { "credential": "api-key", "method": "GET", "path": "/redirect" } }),
        json!({ "name": "http_request", "arguments": { "credential": "api-key", "method": "get", "path": "/big" } }),
        json!({ "name": "http_request", "arguments": { "credential": "api-key", "method": "POST", "path": "/echo", "body": format!("the key is {API_KEY}") } }),
    ]
}

fn python_ready() {
    let ok = Command::new("python3")
        .args(["-c", "import mcp.client.stdio"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the MCP Python SDK is missing: scripts/test installs it (pip install mcp)"
    );
}

/// Run the Python SDK client; returns its transcript and the server's stderr.
fn python_session(env: &TestEnv, era: &str, calls: &[Value]) -> (Value, String) {
    python_ready();
    let errlog = env.dir.path().join(format!("server-stderr-{era}.txt"));
    let spec = json!({
        "era": era,
        "command": [TestEnv::bin(), "mcp", "--agent", "llm"],
        // Added to the few variables the SDK passes on (HOME, PATH, USER, ...).
        "env": { "AGENTCRED_STORE": env.store, "CI": "true" },
        "stderr": errlog,
        "calls": calls,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mcp_client.py");
    let out = env
        .command("python3")
        .arg(script)
        .write_stdin(spec.to_string())
        // Fifteen calls, each reading the store afresh (a debug build, a busy machine).
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}",
        stderr_of(&out)
    );
    let transcript: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_no_value("the python client's stderr", &stderr_of(&out));
    (transcript, fs::read_to_string(errlog).unwrap())
}

fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn python_sdk_in_both_eras_gets_tools_that_never_return_a_value() {
    let env = fixture();
    let calls = hostile_calls();
    for (era, version) in [("legacy", "2025-11-25"), ("modern", "2026-07-28")] {
        let before = mcp_events(&env).len();
        let (t, server_stderr) = python_session(&env, era, &calls);
        assert_eq!(t["protocol_version"], version, "{era}");
        assert_eq!(t["server_name"], "agentcred");
        if era == "modern" {
            assert_eq!(t["opened_with"]["supportedVersions"], json!(["2026-07-28"]));
        }
        // Stable order; http_request offers only the allowed credentials with a route.
        assert_eq!(
            t["tools"][1]["inputSchema"]["properties"]["credential"]["enum"],
            json!(["api-key"])
        );
        assert_eq!(t["tools"][1]["annotations"]["destructiveHint"], true);
        let names: Vec<&str> = t["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["list_credentials", "http_request", "run"], "{era}");
        let list = &t["tools"][0]["annotations"];
        assert_eq!(
            (
                list["readOnlyHint"].clone(),
                list["destructiveHint"].clone()
            ),
            (json!(true), json!(false))
        );
        // One declared command changes things: run is not read-only.
        let run = &t["tools"][2];
        assert_eq!(run["annotations"]["readOnlyHint"], false);
        assert_eq!(run["annotations"]["destructiveHint"], true);
        assert_eq!(
            run["inputSchema"]["properties"]["command"]["enum"],
            json!(["echo-args", "encode", "show-env"])
        );

        let r = t["results"].as_array().unwrap();
        assert_eq!(r.len(), calls.len());
        let listed = &r[0]["structuredContent"]["credentials"];
        assert_eq!(
            listed.as_array().unwrap().len(),
            1,
            "only the allowed one: {listed}"
        );
        assert_eq!(listed[0]["name"], "api-key");
        assert_eq!(listed[0]["variable"], "API_KEY");
        assert_eq!(listed[0]["status"], "ok");
        assert_eq!(listed[0]["upstream_host"], "127.0.0.1");

        let shown = &r[1]["structuredContent"];
        let stdout = shown["stdout"].as_str().unwrap();
        assert!(stdout.contains("API_KEY=<agentcred:api-key>\n"), "{stdout}");
        assert!(stdout.contains("AGENTCRED_AGENT=llm\n"), "{stdout}");
        assert!(
            !stdout.contains("OTHER_KEY"),
            "a credential outside the allow list: {stdout}"
        );
        assert_eq!(shown["exit_code"], 0);

        let encoded = &r[2]["structuredContent"];
        assert_eq!(encoded["stdout"], "<agentcred:api-key>\n");
        assert_eq!(encoded["stderr"], "key=<agentcred:api-key>\n");
        assert_eq!(encoded["exit_code"], 3);

        assert_eq!(r[3]["isError"], true);
        assert!(
            text_of(&r[3]).contains("refused (denied): agent llm declares no command cat-store"),
            "{}",
            text_of(&r[3])
        );
        assert_eq!(r[4]["isError"], true);
        assert!(
            text_of(&r[4]).contains("takes no arguments"),
            "{}",
            text_of(&r[4])
        );
        // Arguments are passed as they are: no shell, no substitution.
        assert_eq!(
            r[5]["structuredContent"]["stdout"],
            "[--fixed][$API_KEY][<agentcred:api-key>]\n"
        );
        for (i, expected) in [
            (
                6,
                "refused (denied): agent llm is not allowed credential other-key",
            ),
            (
                7,
                "refused (denied): agent llm is not allowed credential other-key",
            ),
            (
                8,
                "refused (blocked): the request carries a masked placeholder",
            ),
            (
                9,
                "refused (blocked): the path must stay under the API's base URL",
            ),
            (
                10,
                "refused (blocked): header X-Api-Key is set by agentcred",
            ),
            (
                14,
                "refused (blocked): the request carries the value of api-key",
            ),
        ] {
            assert_eq!(r[i]["isError"], true, "{i}");
            assert!(text_of(&r[i]).contains(expected), "{i}: {}", text_of(&r[i]));
        }
        // Sent through the broker: the upstream echoes the key it got, which comes back
        // scrubbed.
        let echo = &r[11]["structuredContent"];
        assert_eq!(echo["status"], 200, "{echo}");
        assert_eq!(echo["content_type"], "application/json");
        let echoed: Value = serde_json::from_str(echo["body"].as_str().unwrap()).unwrap();
        // The broker overwrites the value with a filler of the same length.
        let filler = format!("<agentcred:scrubbed>{}", "*".repeat(API_KEY.len() - 20));
        assert_eq!(echoed["x-api-key"], filler.as_str());
        assert_eq!(echoed["path"], "/v1/echo?q=a%20b");
        assert_eq!(echoed["body"], "hello");
        // No redirect followed; where it pointed is scrubbed too.
        let moved = &r[12]["structuredContent"];
        assert_eq!(moved["status"], 302);
        assert_eq!(moved["location"], format!("/v1/echo?key={filler}"));
        let big = &r[13]["structuredContent"];
        assert_eq!(big["body_truncated"], true);
        assert_eq!(big["body"].as_str().unwrap().len(), 64 * 1024);

        assert_no_value(&format!("the {era} transcript"), &t.to_string());
        assert_no_value(&format!("the server's stderr ({era})"), &server_stderr);
        assert!(
            server_stderr.contains("agentcred mcp: run cat-store: denied"),
            "{server_stderr}"
        );

        // One audit event per call, refusals included, each naming the tool and decision.
        let events = mcp_events(&env);
        let new = &events[before..];
        let summary: Vec<(String, String, String)> = new
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_string(),
                    e["outcome"].as_str().unwrap().to_string(),
                    e["program"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let expect = |a: &str, o: &str, p: &str| (a.to_string(), o.to_string(), p.to_string());
        assert_eq!(
            summary,
            [
                expect("mcp-list-credentials", "ok", ""),
                expect("mcp-run", "ok", "show-env"),
                expect("mcp-run", "ok", "encode"),
                expect("mcp-run", "denied", "cat-store"),
                expect("mcp-run", "denied", "show-env"),
                expect("mcp-run", "ok", "echo-args"),
                expect("mcp-http-request", "denied", ""),
                expect("mcp-http-request", "denied", ""),
                expect("mcp-http-request", "blocked", ""),
                expect("mcp-http-request", "blocked", ""),
                expect("mcp-http-request", "blocked", ""),
                expect("mcp-http-request", "brokered", ""),
                expect("mcp-http-request", "brokered", ""),
                expect("mcp-http-request", "brokered", ""),
                expect("mcp-http-request", "blocked", ""),
            ],
            "{era}"
        );
        assert!(new.iter().all(|e| e["agent"] == "llm"));
        assert_eq!(new[6]["credentials"], json!(["other-key"]));
        assert_eq!(new[7]["request"]["path"], "/../x");
        assert_eq!(new[7]["request"]["status"], 0, "not sent");
        let sent = &new[11]["request"];
        assert_eq!(
            (
                sent["method"].as_str(),
                sent["host"].as_str(),
                sent["path"].as_str(),
                sent["status"].as_u64()
            ),
            (Some("POST"), Some("127.0.0.1"), Some("/v1/echo"), Some(200))
        );
        assert_eq!(new[12]["request"]["status"], 302);
    }
    // The upstream saw exactly the three requests that were sent, per era, each with the
    // real key in its header and never a value or placeholder in a body.
    let received = env.upstream.requests();
    let paths: Vec<&str> = received
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/v1/echo?q=a%20b", "/v1/redirect", "/v1/big"].repeat(2),
        "{received:?}"
    );
    for request in &received {
        assert_eq!(request["headers"]["x-api-key"], API_KEY);
        assert_no_value("a body sent upstream", request["body"].as_str().unwrap());
    }
    let log = fs::read_to_string(env.store.join("audit.jsonl")).unwrap();
    assert_no_value("the audit log", &log);
    env.cmd().args(["audit", "--verify"]).assert().success();
}

/// Lines of raw JSON-RPC, the way a client writes them.
fn request(id: u64, method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

fn modern(mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    params
}

#[test]
fn stdout_carries_only_json_rpc_whatever_the_input() {
    let env = fixture();
    let mut lines = vec![
        request(
            1,
            "initialize",
            json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "raw", "version": "0" } }),
        ),
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string(),
        "this is not json".to_string(),
        "{\"jsonrpc\":\"2.0\",\"id\":".to_string(),
        request(2, "tools/list", json!({})),
        request(3, "server/discover", modern(json!({}))),
        request(4, "tools/list", modern(json!({}))),
        request(5, "prompts/list", json!({})),
    ];
    let mut id = 10;
    for call in hostile_calls() {
        lines.push(request(id, "tools/call", call.clone()));
        lines.push(request(id + 1, "tools/call", modern(call)));
        id += 2;
    }
    // Arguments of the wrong shape, and names that are not names.
    for arguments in [
        json!({ "command": ["show-env"] }),
        json!({ "command": "../show-env" }),
        json!({ "command": "show-env; cat ~/.config/agentcred/identity.txt" }),
        json!({ "command": "echo-args", "args": "not a list" }),
        json!({ "command": "echo-args", "args": [1, 2] }),
    ] {
        lines.push(request(
            id,
            "tools/call",
            json!({ "name": "run", "arguments": arguments }),
        ));
        id += 1;
    }
    lines.push(request(
        id,
        "tools/call",
        json!({ "name": "get_secret", "arguments": { "name": "api-key" } }),
    ));
    let input = lines.join("\n") + "\n";
    let out = env
        .cmd()
        .args(["mcp", "--agent", "llm"])
        .write_stdin(input)
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "ends when stdin ends: {}",
        stderr_of(&out)
    );
    let stdout = stdout_of(&out);
    assert_no_value("stdout", &stdout);
    assert_no_value("stderr", &stderr_of(&out));
    let replies: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON-RPC: {l}: {e}")))
        .collect();
    assert!(replies.iter().all(|r| r["jsonrpc"] == "2.0"));
    // One reply per request, none for the notification; the two broken lines get errors.
    assert_eq!(replies.len(), lines.len() - 1, "{stdout}");
    assert_eq!(replies[0]["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(replies[1]["error"]["code"], -32700);
    assert_eq!(replies[2]["error"]["code"], -32700);
    assert_eq!(
        replies[4]["result"]["supportedVersions"],
        json!(["2026-07-28"])
    );
    assert_eq!(replies[5]["result"]["resultType"], "complete");
    assert_eq!(replies[6]["error"]["code"], -32601);
    let last = replies.last().unwrap();
    assert_eq!(last["error"]["code"], -32602, "an unknown tool: {last}");
    let refused = replies
        .iter()
        .filter(|r| r["result"]["isError"] == true)
        .count();
    // Per era: 8 refusals among the hostile calls; then the 5 malformed run calls.
    assert_eq!(refused, 2 * 8 + 5, "{stdout}");
    let log = fs::read_to_string(env.store.join("audit.jsonl")).unwrap();
    assert_no_value("the audit log", &log);
}

#[test]
fn a_changed_program_or_a_revoked_grant_stops_working_at_once() {
    let env = fixture();
    let calls = [
        request(
            1,
            "tools/call",
            json!({ "name": "run", "arguments": { "command": "echo-args" } }),
        ),
        request(
            2,
            "tools/call",
            json!({ "name": "list_credentials", "arguments": {} }),
        ),
    ]
    .join("\n");
    fs::write(env.dir.path().join("bin/echo-args"), "#!/bin/sh\nenv\n").unwrap();
    env.cmd()
        .args(["agent", "revoke", "llm", "api-key"])
        .assert()
        .success();
    let out = env
        .cmd()
        .args(["mcp", "--agent", "llm"])
        .write_stdin(calls)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let replies: Vec<Value> = stdout_of(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replies[0]["result"]["isError"], true);
    assert!(
        text_of(&replies[0]["result"]).contains("sha256 changed"),
        "{}",
        replies[0]
    );
    assert_eq!(
        replies[1]["result"]["structuredContent"]["credentials"],
        json!([])
    );
    let events = mcp_events(&env);
    assert_eq!(events[0]["outcome"], "denied");
}

#[test]
fn startup_refuses_what_would_fail_every_call_and_never_prompts() {
    let env = fixture();
    env.cmd()
        .args(["mcp", "--agent", "nobody"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicates::str::contains("error: agent nobody not found"));
    env.cmd()
        .args(["mcp"])
        .env("AGENTCRED_AGENT", "nobody")
        .assert()
        .code(4)
        .stdout("");
    // A passphrase-protected identity without its variable: exit 5 at once, no prompt.
    let locked = TestEnv::new();
    locked
        .cmd()
        .args(["init", "--passphrase"])
        .env("AGENTCRED_PASSPHRASE", "correct horse battery staple")
        .assert()
        .success();
    locked
        .cmd()
        .args(["mcp"])
        .env_remove("CI")
        .assert()
        .code(5)
        .stdout("")
        .stderr(predicates::str::contains("AGENTCRED_PASSPHRASE"));
}

#[test]
fn agent_command_declarations() {
    let env = fixture();
    env.cmd()
        .args([
            "agent",
            "command",
            "add",
            "llm",
            "x",
            "--",
            "no-such-program-here",
        ])
        .assert()
        .code(4);
    env.cmd()
        .args([
            "agent",
            "command",
            "add",
            "llm",
            "Bad Name",
            "--",
            "/bin/true",
        ])
        .assert()
        .code(2);
    env.cmd()
        .args([
            "agent",
            "command",
            "add",
            "llm",
            "show-env",
            "--",
            "/bin/true",
        ])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("--force"));
    env.cmd()
        .args(["agent", "command", "add", "nobody", "x", "--", "/bin/true"])
        .assert()
        .code(4);
    env.cmd()
        .args(["agent", "command", "rm", "llm", "nope"])
        .assert()
        .code(4)
        .stderr(predicates::str::contains(
            "agent llm declares no command nope",
        ));
    let out = env
        .cmd()
        .args(["agent", "show", "llm", "--json"])
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let encode = &shown["commands"]["encode"];
    assert_eq!(encode["args"], json!(["--fixed"]));
    assert_eq!(encode["program_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(shown["commands"]["echo-args"]["extra_args"], true);
    env.cmd()
        .args(["agent", "command", "rm", "llm", "encode"])
        .assert()
        .success();
    let out = env.cmd().args(["agent", "show", "llm"]).output().unwrap();
    assert!(!stdout_of(&out).contains("encode"));
    assert!(stdout_of(&out).contains("show-env"));
}

/// The MCP Inspector CLI, installed by scripts/test into target/test-tools.
fn inspector() -> PathBuf {
    let path = std::env::var_os("AGENTCRED_TEST_INSPECTOR").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/test-tools/inspector/node_modules/.bin/mcp-inspector")
        },
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "the MCP Inspector is missing at {}: scripts/test installs it (npm)",
        path.display()
    );
    path
}

fn inspect(env: &TestEnv, era: &str, method_args: &[&str]) -> std::process::Output {
    let store = format!("AGENTCRED_STORE={}", env.store.display());
    env.command(inspector())
        .args(["--cli", "--format", "json", "--protocol-era", era])
        .args(["-e", &store, "-e", "CI=true"])
        .arg(TestEnv::bin())
        .args(["mcp", "--agent", "llm"])
        .args(method_args)
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap()
}

#[test]
fn mcp_inspector_cli_in_both_eras() {
    let env = fixture();
    let out = inspect(&env, "legacy", &["--method", "tools/list"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tools = listed["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 3, "{listed}");
    assert_eq!(tools[0]["annotations"]["readOnlyHint"], true);

    let out = inspect(&env, "modern", &["--method", "initialize"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let opened: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        opened["result"]["protocolVersion"], "2026-07-28",
        "{opened}"
    );

    for era in ["legacy", "modern"] {
        let out = inspect(
            &env,
            era,
            &[
                "--method",
                "tools/call",
                "--tool-name",
                "run",
                "--tool-arg",
                "command=show-env",
            ],
        );
        assert!(out.status.success(), "{era}: {}", stderr_of(&out));
        let called: Value = serde_json::from_slice(&out.stdout).unwrap();
        let stdout = called["result"]["structuredContent"]["stdout"]
            .as_str()
            .unwrap();
        assert!(
            stdout.contains("API_KEY=<agentcred:api-key>"),
            "{era}: {stdout}"
        );
        assert_no_value(&format!("inspector stdout ({era})"), &stdout_of(&out));
        assert_no_value(&format!("inspector stderr ({era})"), &stderr_of(&out));

        let out = inspect(
            &env,
            era,
            &[
                "--method",
                "tools/call",
                "--tool-name",
                "http_request",
                "--tool-args-json",
                r#"{"credential":"api-key","method":"GET","path":"/echo"}"#,
            ],
        );
        assert!(out.status.success(), "{era}: {}", stderr_of(&out));
        let called: Value = serde_json::from_slice(&out.stdout).unwrap();
        let body = called["result"]["structuredContent"]["body"]
            .as_str()
            .unwrap();
        assert!(
            body.contains(r#""x-api-key": "<agentcred:scrubbed>*"#),
            "{era}: {body}"
        );
        assert_no_value(&format!("inspector stdout ({era})"), &stdout_of(&out));
        assert_no_value(&format!("inspector stderr ({era})"), &stderr_of(&out));

        // A refused call is a tool error: the Inspector exits 5. (It checks the name
        // against tools/list itself, so only listed tools get to the server.)
        for (arguments, refusal) in [
            (
                r#"{"command":"cat-store"}"#,
                "agent llm declares no command cat-store",
            ),
            (
                r#"{"command":"show-env","args":["-0"]}"#,
                "takes no arguments",
            ),
        ] {
            let out = inspect(
                &env,
                era,
                &[
                    "--method",
                    "tools/call",
                    "--tool-name",
                    "run",
                    "--tool-args-json",
                    arguments,
                ],
            );
            assert_eq!(out.status.code(), Some(5), "{era}: {}", stderr_of(&out));
            assert!(stdout_of(&out).contains(refusal), "{}", stdout_of(&out));
            assert!(
                stderr_of(&out).contains("tool_is_error"),
                "{}",
                stderr_of(&out)
            );
            assert_no_value("inspector stdout", &stdout_of(&out));
            assert_no_value("inspector stderr", &stderr_of(&out));
        }
    }
    let log = fs::read_to_string(env.store.join("audit.jsonl")).unwrap();
    assert_no_value("the audit log", &log);
}
