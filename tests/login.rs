//! User-delegated OAuth (README "OAuth for agents that act for a person") against a real
//! authorization server we did not write: node-oidc-provider on loopback
//! (tests/support/oauth-server/server.js, installed by scripts/test with npm). The test plays
//! the browser (tests/support/oauth-server/browser.js): it opens the URL `login` prints,
//! signs in on the provider's own pages, consents, and follows the redirect to agentcred's
//! listener. The provider rotates refresh tokens on every use and revokes the whole grant
//! when a rotated one is presented again, so a lost or doubled refresh shows as exit 5.

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{TestEnv, stderr_of, stdout_of};

const PUBLIC: &str = "agent-public";
const CONFIDENTIAL: &str = "agent-conf";
const CONFIDENTIAL_SECRET: &str = "conf-client-secret-0123456789";
const SA_EMAIL: &str = "sa@agentcred-test.iam.example";

fn support() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/oauth-server")
}

/// The provider, stopped when dropped.
struct Provider {
    child: Child,
    issuer: String,
}

impl Provider {
    fn start(env: &[(&str, &str)]) -> Provider {
        assert!(
            support().join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed: run scripts/test (it runs `npm ci` in tests/support/oauth-server)"
        );
        let mut cmd = Command::new("node");
        cmd.arg("server.js")
            .current_dir(support())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("node runs (scripts/test installs it)");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // The provider keeps writing to stdout (its NOTICE lines, on the first sign-in):
        // the pipe must stay open and drained, or node dies of EPIPE mid-login.
        thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let issuer = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("the provider did not start: {line:?}"))
            .trim()
            .to_string();
        Provider { child, issuer }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the test's browser; its first line is the final HTTP status and URL.
fn browser(args: &[&str]) -> String {
    let out = Command::new("node")
        .arg("browser.js")
        .args(args)
        .current_dir(support())
        .output()
        .unwrap();
    assert!(out.status.success(), "browser: {}", stderr_of(&out));
    stdout_of(&out)
}

/// `add NAME` as an authorization_code credential of `client`.
fn add(env: &TestEnv, provider: &Provider, name: &str, client: &str, extra: &[&str]) {
    let out = env
        .cmd()
        .args([
            "add",
            name,
            "--kind",
            "oauth2",
            "--grant",
            "authorization_code",
        ])
        .args(["--auth-url", &provider.url("/auth")])
        .args(["--token-url", &provider.url("/token")])
        .args(["--device-auth-url", &provider.url("/device/auth")])
        .args(["--client-id", client, "--scope", "openid offline_access"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "add: {}", stderr_of(&out));
}

/// A running `agentcred login` and the lines it printed so far.
struct Login {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Login {
    fn start(env: &TestEnv, args: &[&str]) -> Login {
        let mut child = env
            .std_cmd()
            .arg("login")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Login {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line printed that contains `needle`.
    fn line_with(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("login never printed {needle:?}: {:?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The authorization URL printed.
    fn url(&mut self) -> String {
        self.line_with("code_challenge=").trim().to_string()
    }

    /// Exit status and everything printed.
    fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status.code().unwrap_or(-1), self.seen.join("\n"))
    }
}

/// `login NAME` with the test's browser signing in.
fn login(env: &TestEnv, name: &str) {
    let mut run = Login::start(env, &[name, "--no-browser", "--timeout", "120"]);
    let url = run.url();
    let page = browser(&[&url]);
    assert!(page.starts_with("200 http://127.0.0.1:"), "{page}");
    assert!(page.contains("/callback?code="), "{page}");
    let (code, printed) = run.finish();
    assert_eq!(code, 0, "{printed}");
    assert!(printed.contains(&format!("logged in: {name}")), "{printed}");
}

fn token(env: &TestEnv, name: &str) -> std::process::Output {
    env.cmd().args(["token", name]).output().unwrap()
}

/// The refresh token stored (the value is a login record).
fn refresh_token(env: &TestEnv, name: &str) -> String {
    let record: serde_json::Value = serde_json::from_slice(&env.get(name)).unwrap();
    record["refresh_token"].as_str().unwrap().to_string()
}

fn rotated_at(env: &TestEnv, name: &str) -> String {
    let manifest = std::fs::read_to_string(env.manifest_path()).unwrap();
    let table: toml::Table = manifest.parse().unwrap();
    table["credentials"][name]["rotated_at"].to_string()
}

/// The provider's answer to a refresh with `refresh_token`, sent by the test directly.
fn refresh_directly(provider: &Provider, refresh_token: &str) -> String {
    let script = "const [url, rt] = process.argv.slice(1);
        const res = await fetch(url, { method: 'POST', body: new URLSearchParams({
          grant_type: 'refresh_token', client_id: 'agent-public', refresh_token: rt }) });
        console.log(res.status, await res.text());";
    let out = Command::new("node")
        .args(["--input-type=module", "-e", script])
        .arg(provider.url("/token"))
        .arg(refresh_token)
        .output()
        .unwrap();
    stdout_of(&out)
}

/// Nothing the user or the agent sees, and nothing logged, holds any of `tokens`.
fn assert_nowhere(env: &TestEnv, name: &str, tokens: &[String]) {
    let list = stdout_of(&env.cmd().arg("list").output().unwrap());
    let show = env.cmd().args(["show", name]).output().unwrap();
    let audit = std::fs::read_to_string(env.store.join("audit.jsonl")).unwrap_or_default();
    let manifest = std::fs::read_to_string(env.manifest_path()).unwrap();
    for token in tokens {
        assert!(token.len() > 16, "{token}");
        for (what, text) in [
            ("list", list.as_str()),
            ("show", &stdout_of(&show)),
            ("show stderr", &stderr_of(&show)),
            ("audit log", &audit),
            ("manifest", &manifest),
        ] {
            assert!(!text.contains(token.as_str()), "a token in {what}: {text}");
        }
    }
}

#[test]
fn login_token_rotation_and_a_revoked_grant() {
    let provider = Provider::start(&[]);
    let env = TestEnv::init();
    add(&env, &provider, "mail", PUBLIC, &[]);
    let show = stdout_of(&env.cmd().args(["show", "mail"]).output().unwrap());
    assert!(show.contains("grant:        authorization_code"), "{show}");
    assert!(
        show.contains("logged in:    never: run agentcred login mail"),
        "{show}"
    );
    // A public client: nothing to type, so no token before a login.
    let out = token(&env, "mail");
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("hint: run agentcred login mail"));

    login(&env, "mail");
    let show = stdout_of(&env.cmd().args(["show", "mail"]).output().unwrap());
    assert!(show.contains("logged in:    20"), "{show}");
    assert!(
        show.contains(&format!(" by {}@", common::account())),
        "{show}"
    );
    let first = refresh_token(&env, "mail");
    let rotated_before = rotated_at(&env, "mail");
    // rotated_at is kept to the second: let one pass, so a refresh's rotation shows.
    thread::sleep(Duration::from_millis(1100));

    // Access tokens live 30 s at this provider, so each `token` refreshes, and the
    // provider rotates the refresh token each time.
    let mut seen = vec![first.clone()];
    for _ in 0..2 {
        let out = token(&env, "mail");
        assert!(out.status.success(), "{}", stderr_of(&out));
        let access = stdout_of(&out);
        assert!(access.len() > 20, "{access}");
        let now = refresh_token(&env, "mail");
        assert!(!seen.contains(&now), "the refresh token was not rotated");
        seen.push(now);
        seen.push(access);
    }
    assert_ne!(rotated_at(&env, "mail"), rotated_before);
    // exec injects an access token, never the refresh token.
    let out = env
        .cmd()
        .args([
            "exec",
            "--only",
            "mail",
            "--",
            "sh",
            "-c",
            "printf %s \"$MAIL\"",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let injected = stdout_of(&out);
    assert!(!injected.is_empty() && !injected.contains("refresh"));
    assert!(!seen.contains(&injected));
    seen.push(refresh_token(&env, "mail"));
    assert_nowhere(&env, "mail", &seen);

    // The first refresh token is dead; presenting it makes the provider revoke the grant
    // (its reuse detection), after which agentcred must say to log in again.
    let answer = refresh_directly(&provider, &first);
    assert!(
        answer.starts_with("400") && answer.contains("invalid_grant"),
        "{answer}"
    );
    let before = env.snapshot();
    let out = token(&env, "mail");
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("invalid_grant"), "{err}");
    assert!(err.contains("hint: run agentcred login mail"), "{err}");
    for token in &seen {
        assert!(!err.contains(token.as_str()), "{err}");
    }
    assert_eq!(before, env.snapshot(), "a failed refresh changed the store");
    // And logging in again brings it back.
    login(&env, "mail");
    assert!(token(&env, "mail").status.success());
}

#[test]
fn concurrent_refreshes_make_one_request_each_in_turn() {
    let provider = Provider::start(&[]);
    let env = TestEnv::init();
    add(&env, &provider, "mail", PUBLIC, &[]);
    login(&env, "mail");
    // Eight processes at once: had two refreshed with the same refresh token, the provider
    // would have revoked the grant and the later ones would exit 5.
    let children: Vec<Child> = (0..8)
        .map(|_| {
            env.std_cmd()
                .args(["token", "mail"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert!(!stdout_of(&out).is_empty());
    }
    assert!(token(&env, "mail").status.success());
}

/// How many refresh grants the provider answered.
fn refreshes(provider: &Provider) -> u64 {
    let out = Command::new("curl")
        .args(["-sS", &provider.url("/stats/refreshes")])
        .output()
        .unwrap();
    stdout_of(&out).trim().parse().unwrap()
}

#[test]
fn concurrent_execs_that_need_a_token_make_one_refresh() {
    // Hour-long access tokens: the first process to take the lock refreshes and caches;
    // the others find that token under the lock and ask nobody.
    let provider = Provider::start(&[("ACCESS_TTL", "3600")]);
    let env = TestEnv::init();
    add(&env, &provider, "mail", PUBLIC, &[]);
    login(&env, "mail");
    // The login cached the code exchange's access token: drop it, so a refresh is due.
    let cached = env.store.join("cache/oauth2/mail.age");
    assert!(cached.is_file());
    std::fs::remove_file(&cached).unwrap();
    let before = refresh_token(&env, "mail");
    let children: Vec<Child> = (0..6)
        .map(|_| {
            env.std_cmd()
                .args(["exec", "--only", "mail", "--", "sh", "-c"])
                .arg("printf %s \"$MAIL\"")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut injected = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        injected.push(stdout_of(&out));
    }
    assert_eq!(refreshes(&provider), 1);
    assert!(injected.iter().all(|t| t.len() > 20 && *t == injected[0]));
    assert_ne!(refresh_token(&env, "mail"), before);
}

#[test]
fn a_crash_after_storing_the_rotated_token_loses_nothing() {
    let provider = Provider::start(&[]);
    let env = TestEnv::init();
    add(&env, &provider, "mail", PUBLIC, &[]);
    login(&env, "mail");
    let before = refresh_token(&env, "mail");
    // Killed right after the store has the new refresh token, before the access token is
    // cached or printed.
    let out = env
        .cmd()
        .args(["token", "mail"])
        .env("AGENTCRED_TEST_FAULT", "oauth-refresh-stored")
        .output()
        .unwrap();
    // It died at the hook (SIGABRT), after the commit: the store has the rotated token.
    assert_eq!(out.status.signal(), Some(6), "{}", stderr_of(&out));
    assert!(stdout_of(&out).is_empty());
    assert_ne!(refresh_token(&env, "mail"), before);
    let out = token(&env, "mail");
    assert!(out.status.success(), "{}", stderr_of(&out));

    // The one window no client can close alone: killed between the server's answer and the
    // commit, the new token is gone and the old one is spent. It ends as a clear exit 5.
    let out = env
        .cmd()
        .args(["token", "mail"])
        .env("AGENTCRED_TEST_FAULT", "oauth-refresh-received")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(6), "{}", stderr_of(&out));
    let out = token(&env, "mail");
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("run agentcred login mail"));
}

#[test]
fn a_confidential_client_keeps_its_secret_beside_the_refresh_token() {
    let provider = Provider::start(&[]);
    let env = TestEnv::init();
    let out = env
        .cmd()
        .args([
            "add",
            "crm",
            "--kind",
            "oauth2",
            "--grant",
            "authorization_code",
        ])
        .args(["--auth-url", &provider.url("/auth")])
        .args(["--token-url", &provider.url("/token")])
        .args([
            "--client-id",
            CONFIDENTIAL,
            "--scope",
            "openid",
            "--confidential",
        ])
        .write_stdin(CONFIDENTIAL_SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    login(&env, "crm");
    let out = token(&env, "crm");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let record: serde_json::Value = serde_json::from_slice(&env.get("crm")).unwrap();
    assert_eq!(record["client_secret"], CONFIDENTIAL_SECRET);
    assert!(record["refresh_token"].is_string());

    // A wrong client secret: the person signs in, the code exchange is refused (exit 5),
    // and the hint says how to change a sign-in's client (rotate does not).
    let out = env
        .cmd()
        .args([
            "add",
            "crm2",
            "--kind",
            "oauth2",
            "--grant",
            "authorization_code",
        ])
        .args(["--auth-url", &provider.url("/auth")])
        .args(["--token-url", &provider.url("/token")])
        .args([
            "--client-id",
            CONFIDENTIAL,
            "--scope",
            "openid",
            "--confidential",
        ])
        .write_stdin("not-the-client-secret-0123")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let before = env.snapshot();
    let mut run = Login::start(&env, &["crm2", "--no-browser", "--timeout", "120"]);
    let url = run.url();
    let page = browser(&[&url]);
    assert!(page.starts_with("200 http://127.0.0.1:"), "{page}");
    let (code, printed) = run.finish();
    assert_eq!(code, 5, "{printed}");
    assert!(printed.contains("invalid_client"), "{printed}");
    assert!(
        printed.contains("hint: the endpoint refused the client id or secret")
            && printed.contains("run `agentcred login crm2`"),
        "{printed}"
    );
    assert!(!printed.contains("not-the-client-secret"), "{printed}");
    assert_eq!(before, env.snapshot());
}

#[test]
fn a_redirect_with_another_state_or_an_error_stores_nothing() {
    let provider = Provider::start(&[]);
    let env = TestEnv::init();
    add(&env, &provider, "mail", PUBLIC, &[]);
    let before = env.snapshot();
    for (query, expect) in [
        ("code=stolen&state=forged", "state did not match"),
        (
            "error=access_denied&error_description=the+user+said+no&state=STATE",
            "answered access_denied: \"the user said no\"",
        ),
    ] {
        let mut run = Login::start(&env, &["mail", "--no-browser", "--timeout", "120"]);
        let url = run.url();
        let redirect = url
            .split('&')
            .find_map(|p| p.strip_prefix("redirect_uri="))
            .unwrap()
            .replace("%3A", ":")
            .replace("%2F", "/");
        let state = url
            .split('&')
            .find_map(|p| p.strip_prefix("state="))
            .unwrap();
        let page = browser(&[&format!("{redirect}?{}", query.replace("STATE", state))]);
        assert!(page.starts_with("400 "), "{page}");
        let (code, printed) = run.finish();
        assert_eq!(code, 1, "{printed}");
        assert!(printed.contains(expect), "{printed}");
        assert!(!printed.contains("stolen"), "{printed}");
        assert_eq!(before, env.snapshot());
    }
    // Nobody signs in: a bounded wait and a clear message.
    let out = env
        .cmd()
        .args(["login", "mail", "--no-browser", "--timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("nobody finished signing in"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(before, env.snapshot());
}

/// `login NAME --device`, the test's browser entering the code printed.
fn device_login(env: &TestEnv, name: &str) {
    let mut run = Login::start(env, &[name, "--device", "--timeout", "120"]);
    let line = run.line_with("enter the code");
    let words: Vec<&str> = line.split_whitespace().collect();
    let uri = words[words.iter().position(|w| *w == "open").unwrap() + 1];
    let code = *words.last().unwrap();
    let page = browser(&["--device", uri, code]);
    assert!(
        page.starts_with("200 ") && page.contains("Sign-in Success"),
        "{page}"
    );
    let (status, printed) = run.finish();
    assert_eq!(status, 0, "{printed}");
    assert!(printed.contains(&format!("logged in: {name}")), "{printed}");
}

#[test]
fn device_grant() {
    let provider = Provider::start(&[]);
    let env = TestEnv::init();
    add(&env, &provider, "mail", PUBLIC, &[]);
    device_login(&env, "mail");
    let out = token(&env, "mail");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let show = stdout_of(&env.cmd().args(["show", "mail"]).output().unwrap());
    assert!(show.contains("(authorization code (device))"), "{show}");
}

#[test]
fn device_grant_honours_slow_down() {
    // The server answers the first poll `slow_down`, and any later poll that comes before
    // the interval (grown by 5 s) has passed: a client that ignored slow_down would be
    // told again and again, and never get its token.
    let provider = Provider::start(&[("SLOW_DOWN", "1")]);
    let env = TestEnv::init();
    add(&env, &provider, "mail", PUBLIC, &[]);
    device_login(&env, "mail");
    let out = Command::new("curl")
        .args(["-sS", &provider.url("/device/stats")])
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["slowDown"], 1, "{stats}");
    assert_eq!(stats["tooFast"], 0, "{stats}");
    assert!(stats["polls"].as_u64().unwrap() >= 2, "{stats}");
    assert!(token(&env, "mail").status.success());
}

#[test]
fn device_grant_stops_at_expiry() {
    let provider = Provider::start(&[("DEVICE_TTL", "3")]);
    let env = TestEnv::init();
    add(&env, &provider, "mail", PUBLIC, &[]);
    let out = env
        .cmd()
        .args(["login", "mail", "--device"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("before it expired"),
        "{}",
        stderr_of(&out)
    );
}

/// An RSA key pair made by node: (PKCS#8 private PEM, SPKI public PEM).
fn key_pair() -> (String, String) {
    let out = Command::new("node")
        .args([
            "-e",
            "const { privateKey, publicKey } = require('crypto').generateKeyPairSync('rsa', { modulusLength: 2048,
               privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
             console.log(JSON.stringify([privateKey, publicKey]));",
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn jwt_bearer_mints_tokens_from_a_service_account_key() {
    let (private, public) = key_pair();
    let provider = Provider::start(&[("SA_PUBLIC_KEY", &public)]);
    let env = TestEnv::init();
    let sa = env.home.join("sa.json");
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": SA_EMAIL,
        "private_key_id": "k1",
        "private_key": private,
        "token_uri": provider.url("/sa/token"),
    });
    std::fs::write(&sa, key.to_string()).unwrap();
    let out = env
        .cmd()
        .args(["add", "gcp", "--kind", "oauth2", "--grant", "jwt-bearer"])
        .arg("--from-file")
        .arg(&sa)
        .args(["--scope", "https://www.googleapis.com/auth/cloud-platform"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let show = stdout_of(&env.cmd().args(["show", "gcp"]).output().unwrap());
    assert!(
        show.contains(&format!("client id:    {SA_EMAIL}")),
        "{show}"
    );
    assert!(show.contains("/sa/token"), "{show}");
    let out = env
        .cmd()
        .args([
            "exec",
            "--only",
            "gcp",
            "--",
            "sh",
            "-c",
            "printf %s \"$GCP\"",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).starts_with("sa-token-"),
        "{}",
        stdout_of(&out)
    );
    // Cached for its hour: a second token is the same, with no second grant.
    assert_eq!(stdout_of(&token(&env, "gcp")), stdout_of(&out));

    // A key the server does not know: its signature fails to verify.
    let (other, _) = key_pair();
    let key = serde_json::json!({
        "client_email": SA_EMAIL, "private_key": other, "token_uri": provider.url("/sa/token"),
    });
    std::fs::write(&sa, key.to_string()).unwrap();
    let out = env
        .cmd()
        .args([
            "add",
            "gcp2",
            "--kind",
            "oauth2",
            "--grant",
            "jwt-bearer",
            "--scope",
            "s",
        ])
        .arg("--from-file")
        .arg(&sa)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = token(&env, "gcp2");
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("invalid_grant"), "{err}");
    assert!(err.contains("hint: the endpoint refused the client id or its secret or key"));
    assert!(err.contains("agentcred rotate gcp2"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");

    // rotate takes a new key for the same account, checked before it is stored: one the
    // server does not know fails --verify; one for another account is refused.
    let before = env.snapshot();
    let out = env
        .cmd()
        .args(["rotate", "gcp", "--verify", "true", "--from-file"])
        .arg(&sa)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(
            "error: gcp keeps its old value: its new service-account key did not obtain an access token"
        ),
        "{}",
        stderr_of(&out)
    );
    let stranger = serde_json::json!({
        "client_email": "other@agentcred-test.iam.example", "private_key": private,
        "token_uri": provider.url("/sa/token"),
    });
    std::fs::write(&sa, stranger.to_string()).unwrap();
    let out = env
        .cmd()
        .args(["rotate", "gcp", "--from-file"])
        .arg(&sa)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("is for other@agentcred-test.iam.example"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(before, env.snapshot());
    // The same key again under a new id: verified, stored, and exec still gets a token.
    let renewed = serde_json::json!({
        "client_email": SA_EMAIL, "private_key_id": "k2", "private_key": private,
        "token_uri": provider.url("/sa/token"),
    });
    std::fs::write(&sa, renewed.to_string()).unwrap();
    let out = env
        .cmd()
        .args([
            "rotate",
            "gcp",
            "--verify",
            "sh -c 'test -n \"$GCP\"'",
            "--from-file",
        ])
        .arg(&sa)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&token(&env, "gcp")).starts_with("sa-token-"));
}

#[test]
fn rotate_of_a_login_says_to_sign_in_again() {
    let provider = Provider::start(&[]);
    let env = TestEnv::init();
    add(&env, &provider, "mail", PUBLIC, &[]);
    let before = env.snapshot();
    let out = env
        .cmd()
        .args(["rotate", "mail"])
        .write_stdin("a-typed-refresh-token-0123456789")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("run agentcred login mail"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(before, env.snapshot());
}

#[test]
fn the_broker_refreshes_a_user_token_and_stores_the_rotated_one() {
    let provider = Provider::start(&[]);
    let env = TestEnv::init();
    // The upstream is the provider's own userinfo endpoint, which wants the access token.
    add(
        &env,
        &provider,
        "mail",
        PUBLIC,
        &[
            "--upstream",
            &provider.url(""),
            "--header",
            "Authorization: Bearer {}",
            "--base-url-env",
            "MAIL_API",
        ],
    );
    login(&env, "mail");
    let first = refresh_token(&env, "mail");
    let dump = env.dir.path().join("env.dump");
    // Two requests: access tokens live 30 s here, so the broker refreshes for each, and the
    // provider rotates the refresh token each time; the second refresh only works if the
    // broker stored the first rotation.
    let script = format!(
        "env -0 > '{}'; curl -sS \"$MAIL_API/me\"; echo; curl -sS \"$MAIL_API/me\"",
        dump.display()
    );
    let out = env
        .cmd()
        .args([
            "exec", "--only", "mail", "--broker", "--", "sh", "-c", &script,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let answers = stdout_of(&out);
    assert_eq!(
        answers.matches("\"sub\":\"alice\"").count(),
        2,
        "{answers}{}",
        stderr_of(&out)
    );
    let now = refresh_token(&env, "mail");
    assert_ne!(
        now, first,
        "the broker did not store the rotated refresh token"
    );
    // The program never held the refresh token, old or new.
    let environment = String::from_utf8_lossy(&std::fs::read(&dump).unwrap()).into_owned();
    assert!(
        environment.contains("MAIL_API=http://127.0.0.1:"),
        "{environment}"
    );
    for token in [&first, &now] {
        assert!(!environment.contains(token.as_str()));
        assert!(!answers.contains(token.as_str()));
    }
    // And the store is still in step with the provider.
    let out = token(&env, "mail");
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn a_server_that_quotes_the_refresh_token_never_gets_it_shown() {
    let provider = Provider::start(&[]);
    let env = TestEnv::init();
    add(&env, &provider, "mail", PUBLIC, &[]);
    login(&env, "mail");
    let stored = refresh_token(&env, "mail");
    let out = Command::new("curl")
        .args(["-sS", &provider.url("/test/echo-errors")])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "ok");
    let before = env.snapshot();
    for args in [
        &["token", "mail"][..],
        &["exec", "--only", "mail", "--", "true"],
        &["export", "--only", "mail"],
    ] {
        let out = env.cmd().args(args).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {err}");
        // The server's words are shown (so the message is this one), its quote is not.
        assert!(err.contains("refresh token <redacted>"), "{err}");
        assert!(err.contains("hint: run agentcred login mail"), "{err}");
        assert!(!err.contains(stored.as_str()), "{err}");
        assert!(!err.contains(&stored[..24]), "{err}");
        assert!(stdout_of(&out).is_empty());
    }
    assert_eq!(before, env.snapshot());
    assert_nowhere(&env, "mail", &[stored]);
}
