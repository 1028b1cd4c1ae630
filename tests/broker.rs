//! `exec --broker` with clients we did not write (curl, the official `openai` and
//! `anthropic` Python SDKs) against an HTTPS upstream on loopback (tests/support/
//! broker_upstream.py) whose test CA reaches agentcred through `SSL_CERT_FILE`.
//!
//! Every test asserts that the upstream received the real key and that the program's
//! whole environment never held it.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{TestEnv, stderr_of, stdout_of};

const KEY: &str = "sk-proj-REALKEY-0123456789abcdefghij";
const ANTHROPIC_KEY: &str = "sk-ant-api03-REALKEY-abcdefghij0123456789";

/// The Python upstream, killed when dropped.
struct Upstream {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Upstream {
    fn start(dir: &Path) -> Upstream {
        let dir = dir.join("upstream");
        std::fs::create_dir_all(&dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/broker_upstream.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(&dir)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(dir.join("port")) {
                break text.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "the upstream did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Upstream { child, dir, port }
    }

    fn url(&self, prefix: &str) -> String {
        format!("https://127.0.0.1:{}{prefix}", self.port)
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Every request received: (method, path, lowercase headers, body).
    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("requests.jsonl"))
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

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success())
}

/// A store holding `openai` (an upstream at the test server's /v1) and its upstream.
fn setup() -> (TestEnv, Upstream) {
    let env = TestEnv::init();
    let upstream = Upstream::start(env.dir.path());
    env.cmd()
        .args(["add", "openai", "--env", "OPENAI_API_KEY", "--upstream"])
        .arg(upstream.url("/v1"))
        .args([
            "--header",
            "Authorization: Bearer {}",
            "--base-url-env",
            "OPENAI_BASE_URL",
        ])
        .write_stdin(KEY)
        .assert()
        .success();
    (env, upstream)
}

/// `exec --broker` of `sh -c SCRIPT` with SSL_CERT_FILE set; the program also dumps its
/// whole environment (NUL-separated) to `env.dump`.
fn run_brokered(
    env: &TestEnv,
    upstream: &Upstream,
    extra: &[&str],
    script: &str,
) -> std::process::Output {
    let dump = env.dir.path().join("env.dump");
    let script = format!("env -0 > '{}'; {script}", dump.display());
    env.cmd()
        .env("SSL_CERT_FILE", upstream.ca())
        .args(["exec", "-v", "--broker"])
        .args(extra)
        .args(["--", "sh", "-c", &script])
        // A hang guard, not a timing assertion: importing an SDK takes a minute on a loaded CI VM.
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap()
}

fn assert_env_clean(env: &TestEnv, values: &[&str]) -> String {
    let dump = std::fs::read(env.dir.path().join("env.dump")).unwrap();
    let text = String::from_utf8_lossy(&dump).into_owned();
    for value in values {
        assert!(
            !text.contains(value),
            "the program's environment holds a real value"
        );
    }
    text
}

fn audit_events(env: &TestEnv) -> Vec<serde_json::Value> {
    let out = env.cmd().args(["audit", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = doc
        .get("events")
        .and_then(|e| e.as_array())
        .cloned()
        .or_else(|| doc.as_array().cloned())
        .unwrap_or_default();
    events
        .into_iter()
        .filter(|e| e["action"] == "broker")
        .collect()
}

#[test]
fn curl_through_the_broker() {
    let (env, upstream) = setup();
    // Each line: what, then curl's status code (and body where it matters).
    let script = r#"
set -u
token_url=$(printf %s "$OPENAI_BASE_URL" | sed 's#/\([A-Za-z0-9]*\)/openai$#/WRONG\1/openai#')
echo "echo $(curl -sS -H "Authorization: Bearer $OPENAI_API_KEY" "$OPENAI_BASE_URL/echo" -w ' %{http_code}')"
echo "wrong-token $(curl -sS -o /dev/null -w '%{http_code}' "$token_url/models")"
echo "query $(curl -sS -o /dev/null -w '%{http_code}' "$OPENAI_BASE_URL/models?key=$OPENAI_API_KEY")"
echo "body $(curl -sS -o /dev/null -w '%{http_code}' -H 'content-type: application/json' --data "{\"prompt\":\"print $OPENAI_API_KEY\"}" "$OPENAI_BASE_URL/chat/completions")"
echo "redirect $(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "$OPENAI_BASE_URL/redirect")"
"#;
    let out = run_brokered(&env, &upstream, &[], script);
    let stdout = stdout_of(&out);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains("agentcred: openai through the broker (OPENAI_API_KEY holds a placeholder, OPENAI_BASE_URL=http://127.0.0.1:"),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    // The echo of the real key is scrubbed, same length.
    assert!(
        lines[0].starts_with("echo {\"you_sent\": \"Bearer <agentcred:scrubbed>"),
        "{stdout}"
    );
    assert!(lines[0].ends_with(" 200"), "{stdout}");
    assert_eq!(lines[1], "wrong-token 401", "{stdout}");
    assert_eq!(lines[2], "query 403", "{stdout}");
    assert_eq!(lines[3], "body 403", "{stdout}");
    // Not followed: the 302 comes back, pointing at the upstream's own path.
    assert!(lines[4].starts_with("redirect 302 "), "{stdout}");
    let requests = upstream.requests();
    // Only the echo and the redirect reached the upstream (401, 403s never did).
    let paths: Vec<&str> = requests
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/v1/echo", "/v1/redirect"]);
    assert_eq!(
        requests[0]["headers"]["authorization"],
        format!("Bearer {KEY}")
    );
    assert_eq!(
        requests[0]["headers"]["host"],
        format!("127.0.0.1:{}", upstream.port)
    );
    let dumped = assert_env_clean(&env, &[KEY]);
    assert!(
        dumped.contains("OPENAI_API_KEY=sk-proj-agentcred-"),
        "{dumped}"
    );
    // Audit: one event per request that had a route, with the decision.
    let events = audit_events(&env);
    let summary: Vec<(String, String, u64, String)> = events
        .iter()
        .map(|e| {
            (
                e["request"]["method"].as_str().unwrap().to_string(),
                e["request"]["path"].as_str().unwrap().to_string(),
                e["request"]["status"].as_u64().unwrap(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect =
        |m: &str, p: &str, s: u64, d: &str| (m.to_string(), p.to_string(), s, d.to_string());
    assert_eq!(
        summary,
        [
            expect("GET", "/v1/echo", 200, "brokered"),
            expect("GET", "/v1/models", 403, "blocked"),
            expect("POST", "/v1/chat/completions", 403, "blocked"),
            expect("GET", "/v1/redirect", 302, "brokered"),
        ]
    );
    assert_eq!(events[0]["credentials"][0], "openai");
    assert_eq!(events[0]["request"]["host"], "127.0.0.1");
    assert_eq!(events[0]["program"], "sh");
    let log = std::fs::read_to_string(env.store.join("audit.jsonl")).unwrap();
    assert!(!log.contains(KEY) && !log.contains("key="), "{log}");
    // The human table: a REQUEST column (method, host, path, status), the decision as the
    // outcome, the exec's own event with a dash there.
    let out = env.cmd().arg("audit").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let table = stdout_of(&out);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    // The usual nine columns (tests/audit.rs), then REQUEST.
    assert_eq!(header.len(), 10, "{table}");
    assert_eq!(header[2..4], ["ACTION", "OUTCOME"], "{table}");
    assert_eq!(header[9], "REQUEST", "{table}");
    let rows: Vec<(String, String, String)> = lines
        .map(|line| {
            // The first nine cells are single words here; the request cell is three.
            let words: Vec<&str> = line.split_whitespace().collect();
            (
                words[2].to_string(),
                words[3].to_string(),
                words[9..].join(" "),
            )
        })
        .collect();
    let row = |a: &str, o: &str, r: &str| (a.to_string(), o.to_string(), r.to_string());
    let host = "127.0.0.1";
    assert_eq!(
        rows.iter()
            .filter(|r| r.0 == "broker")
            .cloned()
            .collect::<Vec<_>>(),
        [
            row("broker", "brokered", &format!("GET {host}/v1/echo 200")),
            row("broker", "blocked", &format!("GET {host}/v1/models 403")),
            row(
                "broker",
                "blocked",
                &format!("POST {host}/v1/chat/completions 403")
            ),
            row("broker", "brokered", &format!("GET {host}/v1/redirect 302")),
        ],
        "{table}"
    );
    assert!(rows.iter().any(|r| r.0 == "exec" && r.2 == "-"), "{table}");
    assert!(!table.contains(KEY) && !table.contains("key="), "{table}");
}

#[test]
fn a_credential_without_upstream_is_refused_unless_raw() {
    let (env, upstream) = setup();
    env.add("plain", b"plain-value-123456");
    let out = run_brokered(&env, &upstream, &[], "echo ran");
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(!stdout_of(&out).contains("ran"));
    assert_eq!(
        stderr_of(&out).lines().next().unwrap(),
        "error: --broker: plain has no upstream, so it cannot be brokered; give it one (edit or add --force with --provider P or --upstream URL), or pass it as is with --raw plain"
    );
    let out = run_brokered(&env, &upstream, &["--raw", "plain"], "echo \"$PLAIN\"");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "plain-value-123456\n");
    assert!(stderr_of(&out).contains("agentcred: injecting plain as PLAIN (raw, not brokered)"));
    assert_env_clean(&env, &[KEY]);
    // A copy of the key under another inherited name is not passed on either.
    let out = env
        .cmd()
        .env("SSL_CERT_FILE", upstream.ca())
        .env("MY_OLD_KEY", KEY)
        .args([
            "exec", "--broker", "--raw", "plain", "--", "sh", "-c", "env",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stdout_of(&out).contains(KEY));
    assert!(
        stderr_of(&out).contains("warning: not passing MY_OLD_KEY to the program: it holds the value of openai, which is brokered"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn openai_sdk_lists_models_and_streams() {
    if !python_has("openai") {
        panic!(
            "the openai Python package is missing: scripts/test installs it (pip install openai)"
        );
    }
    let (env, upstream) = setup();
    let signal = upstream.dir.join("signal");
    let program = format!(
        r#"
import os, openai
client = openai.OpenAI()
print("models", [m.id for m in client.models.list()])
stream = client.chat.completions.create(model="gpt-test", messages=[{{"role": "user", "content": "hi"}}], stream=True)
seen = []
for chunk in stream:
    text = chunk.choices[0].delta.content
    seen.append(text)
    if len(seen) == 1:
        open({signal:?}, "w").close()
print("stream", seen)
"#,
        signal = signal.display().to_string()
    );
    let path = env.dir.path().join("client.py");
    std::fs::write(&path, program).unwrap();
    let out = run_brokered(
        &env,
        &upstream,
        &[],
        &format!("python3 '{}'", path.display()),
    );
    let stdout = stdout_of(&out);
    assert!(out.status.success(), "{}{}", stdout, stderr_of(&out));
    assert_eq!(
        stdout, "models ['gpt-test']\nstream ['first', 'second']\n",
        "event 1 must reach the client while the upstream still waits for it"
    );
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r["headers"]["authorization"], format!("Bearer {KEY}"));
    }
    assert_eq!(requests[1]["path"], "/v1/chat/completions");
    assert_env_clean(&env, &[KEY]);
}

#[test]
fn anthropic_sdk_sends_x_api_key() {
    if !python_has("anthropic") {
        panic!(
            "the anthropic Python package is missing: scripts/test installs it (pip install anthropic)"
        );
    }
    let env = TestEnv::init();
    let upstream = Upstream::start(env.dir.path());
    env.cmd()
        .args([
            "add",
            "anthropic",
            "--env",
            "ANTHROPIC_API_KEY",
            "--upstream",
        ])
        .arg(upstream.url(""))
        .args([
            "--header",
            "x-api-key: {}",
            "--base-url-env",
            "ANTHROPIC_BASE_URL",
        ])
        .write_stdin(ANTHROPIC_KEY)
        .assert()
        .success();
    let program = r#"
import anthropic
client = anthropic.Anthropic()
message = client.messages.create(model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
print(message.content[0].text)
"#;
    let path = env.dir.path().join("client.py");
    std::fs::write(&path, program).unwrap();
    let out = run_brokered(
        &env,
        &upstream,
        &[],
        &format!("python3 '{}'", path.display()),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "hello from upstream\n");
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["path"], "/v1/messages");
    assert_eq!(requests[0]["headers"]["x-api-key"], ANTHROPIC_KEY);
    let dumped = assert_env_clean(&env, &[ANTHROPIC_KEY]);
    assert!(
        dumped.contains("ANTHROPIC_API_KEY=sk-ant-api03-agentcred-"),
        "{dumped}"
    );
}

#[test]
fn upstream_flags_are_checked_and_sealed() {
    let env = TestEnv::init();
    let out = env
        .cmd()
        .args(["add", "k", "--upstream", "http://api.example.com"])
        .write_stdin("value-123456789")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr_of(&out).lines().next().unwrap(),
        "error: invalid upstream URL http://api.example.com: plain http is only allowed to a loopback address; use https"
    );
    env.cmd()
        .args(["add", "gh", "--provider", "github"])
        .write_stdin("ghp_0123456789abcdef")
        .assert()
        .success();
    let out = env.cmd().args(["show", "gh", "--json"]).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let upstream = doc.get("credential").unwrap_or(&doc)["upstream"].clone();
    assert_eq!(
        upstream,
        serde_json::json!({"url": "https://api.github.com", "header": "Authorization: Bearer {}", "base_url_env": "GITHUB_API_URL"})
    );
    // Pointing the credential elsewhere by hand breaks the seal.
    let manifest = std::fs::read_to_string(env.manifest_path()).unwrap();
    assert!(manifest.contains("https://api.github.com"));
    std::fs::write(
        env.manifest_path(),
        manifest.replace("https://api.github.com", "https://evil.example.com"),
    )
    .unwrap();
    let out = env
        .cmd()
        .args(["exec", "--broker", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("gh"), "{}", stderr_of(&out));
}

#[test]
fn oauth2_tokens_are_minted_by_the_broker_over_https() {
    let env = TestEnv::init();
    let upstream = Upstream::start(env.dir.path());
    // The token endpoint is HTTPS with the test CA: agentcred's own client (ureq) trusts
    // it only through SSL_CERT_FILE.
    env.cmd()
        .args([
            "add",
            "api",
            "--kind",
            "oauth2",
            "--client-id",
            "bot",
            "--token-url",
        ])
        .arg(upstream.url("/oauth/token"))
        .arg("--upstream")
        .arg(upstream.url("/v1"))
        .args(["--base-url-env", "API_BASE_URL"])
        .write_stdin("client-secret-0123456789")
        .assert()
        .success();
    let script = r#"curl -sS "$API_BASE_URL/echo""#;
    let out = run_brokered(&env, &upstream, &[], script);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        stdout_of(&out),
        "{\"you_sent\": \"Bearer <agentcred:scrubbed>**********\"}"
    );
    let requests = upstream.requests();
    let paths: Vec<&str> = requests
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/oauth/token", "/v1/echo"]);
    assert_eq!(
        requests[1]["headers"]["authorization"],
        "Bearer minted-access-token-0123456789"
    );
    assert_env_clean(&env, &["client-secret-0123456789", "minted-access-token"]);

    // Without SSL_CERT_FILE the test CA is not trusted: the broker answers 502 and says
    // nothing secret.
    let out = env
        .cmd()
        .args([
            "exec",
            "--broker",
            "--",
            "sh",
            "-c",
            "curl -sS -w ' %{http_code}' \"$API_BASE_URL/echo\"",
        ])
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    assert!(stdout.ends_with(" 502"), "{stdout}{}", stderr_of(&out));
    assert!(!stdout.contains("client-secret"), "{stdout}");
}

#[test]
fn an_agent_policy_can_require_the_broker() {
    let (env, upstream) = setup();
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "openai", "--broker"])
        .assert()
        .success();
    let out = env.cmd().args(["agent", "show", "bot"]).output().unwrap();
    assert!(
        stdout_of(&out)
            .lines()
            .any(|l| l.starts_with("broker") && l.ends_with("yes")),
        "{}",
        stdout_of(&out)
    );
    let out = env
        .cmd()
        .env("SSL_CERT_FILE", upstream.ca())
        .args([
            "exec",
            "--agent",
            "bot",
            "--",
            "sh",
            "-c",
            "echo \"$OPENAI_API_KEY\"",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).starts_with("sk-proj-agentcred-"),
        "{}",
        stdout_of(&out)
    );
    let out = env
        .cmd()
        .args(["exec", "--raw", "openai", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // The store has an agent and none applies to `true`: that warning comes first.
    assert_eq!(
        stderr_of(&out).lines().last().unwrap(),
        "error: --raw goes with --broker (or an agent whose policy brokers)"
    );
}

#[test]
fn edit_sets_and_removes_the_upstream() {
    let env = TestEnv::init();
    env.add("gh", b"ghp_0123456789abcdef");
    let out = env
        .cmd()
        .args(["edit", "gh", "--provider", "github"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).starts_with("edited gh: upstream"),
        "{}",
        stderr_of(&out)
    );
    let show = env.cmd().args(["show", "gh"]).output().unwrap();
    assert!(
        stdout_of(&show).contains(
            "upstream:     https://api.github.com (Authorization: Bearer {}, base URL in GITHUB_API_URL)"
        ),
        "{}",
        stdout_of(&show)
    );
    env.cmd()
        .args(["edit", "gh", "--no-upstream"])
        .assert()
        .success();
    let show = env.cmd().args(["show", "gh"]).output().unwrap();
    assert!(
        !stdout_of(&show).contains("upstream: "),
        "{}",
        stdout_of(&show)
    );
    // A failed edit changes nothing.
    let before = env.snapshot();
    let out = env
        .cmd()
        .args(["edit", "gh", "--upstream", "http://example.com"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(before, env.snapshot());
}

#[test]
fn edit_changes_one_part_of_a_route_and_keeps_the_rest() {
    let env = TestEnv::init();
    env.add("ant", b"sk-ant-0123456789abcdef0123");
    env.cmd()
        .args(["edit", "ant", "--provider", "anthropic"])
        .assert()
        .success();
    let upstream_line = |env: &TestEnv| {
        let show = env.cmd().args(["show", "ant"]).output().unwrap();
        stdout_of(&show)
            .lines()
            .find(|l| l.starts_with("upstream:"))
            .map(str::to_owned)
    };
    // A new URL alone keeps the header (x-api-key, not Bearer) and the base-URL variable.
    env.cmd()
        .args([
            "edit",
            "ant",
            "--upstream",
            "https://proxy.example.com/anthropic",
        ])
        .assert()
        .success();
    assert_eq!(
        upstream_line(&env).as_deref(),
        Some(
            "upstream:     https://proxy.example.com/anthropic (x-api-key: {}, base URL in ANTHROPIC_BASE_URL)"
        )
    );
    // So does a new base-URL variable alone, and a new header alone.
    env.cmd()
        .args(["edit", "ant", "--base-url-env", "CLAUDE_URL"])
        .assert()
        .success();
    env.cmd()
        .args(["edit", "ant", "--header", "Authorization: Bearer {}"])
        .assert()
        .success();
    assert_eq!(
        upstream_line(&env).as_deref(),
        Some(
            "upstream:     https://proxy.example.com/anthropic (Authorization: Bearer {}, base URL in CLAUDE_URL)"
        )
    );
    // A header for a credential that has no route is refused, and changes nothing.
    env.add("plain", b"0123456789abcdef0123");
    let before = env.snapshot();
    let out = env
        .cmd()
        .args(["edit", "plain", "--header", "x-api-key: {}"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("this credential has none; give --upstream URL or --provider"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(before, env.snapshot());
}
