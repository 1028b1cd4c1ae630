//! OAuth 2.0 client credentials against a real HTTP server on loopback: the grant as sent,
//! the cache (reuse, refresh, binding, one request for concurrent execs), every failure the
//! README names, and no secret or token in plain text anywhere.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{TestEnv, stderr_of, stdout_of};

const CLIENT_ID: &str = "bot:one";
/// Characters that must be form-encoded (RFC 6749 section 2.3.1) in both methods.
const SECRET: &str = "cs-9f3Kq2 secret:&=%+/x";

/// One request as the server read it.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn form(&self) -> BTreeMap<String, String> {
        self.body
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(k), form_decode(v))
            })
            .collect()
    }

    /// The client id and secret as the server authenticates them, by either method.
    fn client(&self) -> Option<(String, String)> {
        if let Some(basic) = self.header("authorization") {
            let encoded = basic.strip_prefix("Basic ")?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            let pair = String::from_utf8(decoded).ok()?;
            let (id, secret) = pair.split_once(':')?;
            return Some((form_decode(id), form_decode(secret)));
        }
        let form = self.form();
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    }
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Answers a request, given it and its 1-based number.
type Handler = Box<dyn Fn(&Request, usize) -> Reply + Send + Sync>;

/// What the server does with a request.
enum Reply {
    /// Status, content type, body.
    Answer(u16, &'static str, String),
    /// Read the request, then say nothing (until the test process ends).
    Hang,
    /// Wait, then answer.
    After(Duration, Box<Reply>),
}

fn json(status: u16, body: serde_json::Value) -> Reply {
    Reply::Answer(status, "application/json", body.to_string())
}

/// A token response: `tok-N` for the Nth request, with the given lifetime.
fn token(n: usize, expires_in: Option<u64>) -> Reply {
    let mut body = serde_json::json!({
        "access_token": token_text(n),
        "token_type": "Bearer",
    });
    if let Some(secs) = expires_in {
        body["expires_in"] = secs.into();
    }
    json(200, body)
}

fn token_text(n: usize) -> String {
    format!("tok-{n}-b7d1e3a9c2f04e68")
}

/// A token endpoint on 127.0.0.1: every request is recorded, then answered by `handler`
/// (given the request and its 1-based number), unless the client authenticated wrongly,
/// which gets the RFC's 401 `invalid_client`.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Server {
        Self::start_for(CLIENT_ID, &[SECRET], handler)
    }

    /// A server that accepts client `id` with any of `secrets`.
    fn start_for(
        id: &'static str,
        secrets: &'static [&'static str],
        handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let recorded = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let handler = Arc::clone(&handler);
                let recorded = Arc::clone(&recorded);
                thread::spawn(move || {
                    let Some(request) = read_request(&stream) else {
                        return;
                    };
                    let n = {
                        let mut all = recorded.lock().unwrap();
                        all.push(request.clone());
                        all.len()
                    };
                    let accepted = request
                        .client()
                        .is_some_and(|(i, s)| i == id && secrets.contains(&s.as_str()));
                    let reply = if accepted {
                        handler(&request, n)
                    } else {
                        json(401, serde_json::json!({"error": "invalid_client"}))
                    };
                    answer(stream, reply);
                });
            }
        });
        Server { url, requests }
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn answer(mut stream: TcpStream, reply: Reply) {
    match reply {
        Reply::Answer(status, content_type, body) => {
            let head = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
                body.len(),
                if status == 302 {
                    "Location: http://127.0.0.1:1/elsewhere\r\n"
                } else {
                    ""
                }
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
        Reply::Hang => {
            thread::sleep(Duration::from_secs(120));
        }
        Reply::After(delay, reply) => {
            thread::sleep(delay);
            answer(stream, *reply);
        }
    }
}

/// A store with one oauth2 credential `api` (as API_TOKEN) for `url`.
fn store_for(url: &str, extra: &[&str]) -> TestEnv {
    let env = TestEnv::init();
    add_client(&env, url, extra);
    env
}

fn add_client(env: &TestEnv, url: &str, extra: &[&str]) {
    let out = env
        .cmd()
        .args([
            "add",
            "api",
            "--kind",
            "oauth2",
            "--token-url",
            url,
            "--client-id",
            CLIENT_ID,
            "--env",
            "API_TOKEN",
            "--force",
        ])
        .args(extra)
        .write_stdin(SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "add: {}", stderr_of(&out));
}

/// `exec` printing the injected token, touching `marker` only if the program starts.
fn exec_printing(env: &TestEnv) -> std::process::Output {
    env.cmd()
        .args([
            "exec",
            "--",
            "sh",
            "-c",
            "touch marker; printf %s \"$API_TOKEN\"",
        ])
        .output()
        .unwrap()
}

fn marker(env: &TestEnv) -> std::path::PathBuf {
    env.dir.path().join("marker")
}

fn assert_token(out: &std::process::Output, n: usize) {
    assert!(out.status.success(), "{}", stderr_of(out));
    assert_eq!(stdout_of(out), token_text(n));
}

#[test]
fn first_mint_sends_the_grant_with_basic_authentication() {
    let server = Server::start(|_, n| token(n, Some(3600)));
    let env = store_for(
        &server.url,
        &[
            "--scope",
            "read write",
            "--audience",
            "https://api.example.com/",
        ],
    );
    let out = exec_printing(&env);
    assert_token(&out, 1);
    assert!(marker(&env).exists());
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/oauth/token");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = request.form();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "read write");
    assert_eq!(form["audience"], "https://api.example.com/");
    assert!(!form.contains_key("client_secret") && !form.contains_key("client_id"));
    // The id and secret are form-encoded before Basic (RFC 6749 section 2.3.1).
    let basic = request.header("authorization").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "bot%3Aone:cs-9f3Kq2+secret%3A%26%3D%25%2B%2Fx"
    );
    assert_eq!(request.client(), Some((CLIENT_ID.into(), SECRET.into())));
}

#[test]
fn post_authentication_puts_the_client_in_the_body() {
    let server = Server::start(|_, n| token(n, Some(3600)));
    let env = store_for(&server.url, &["--auth-method", "post"]);
    assert_token(&exec_printing(&env), 1);
    let request = &server.requests()[0];
    assert_eq!(request.header("authorization"), None);
    let form = request.form();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], CLIENT_ID);
    assert_eq!(form["client_secret"], SECRET);
    assert!(!form.contains_key("scope") && !form.contains_key("audience"));
}

#[test]
fn a_cached_token_is_reused_by_exec_and_token() {
    let server = Server::start(|_, n| token(n, Some(3600)));
    let env = store_for(&server.url, &[]);
    assert_token(&exec_printing(&env), 1);
    let out = env
        .cmd()
        .args(["-v", "exec", "--", "sh", "-c", "printf %s \"$API_TOKEN\""])
        .output()
        .unwrap();
    assert_token(&out, 1);
    assert!(
        stderr_of(&out).contains("api: using the cached access token (expires in "),
        "{}",
        stderr_of(&out)
    );
    let out = env.cmd().args(["token", "api"]).output().unwrap();
    assert_token(&out, 1);
    // export gives what exec injects: the token, not the client secret.
    env.cmd()
        .args(["export", "--format", "json"])
        .assert()
        .success()
        .stdout(format!("{{\n  \"API_TOKEN\": \"{}\"\n}}\n", token_text(1)));
    assert_eq!(server.count(), 1);
}

#[test]
fn a_token_is_refreshed_when_less_than_a_minute_is_left() {
    // 63 s: usable while more than 60 s are left, i.e. for 3 s.
    let server = Server::start(|_, n| token(n, Some(63)));
    let env = store_for(&server.url, &[]);
    assert_token(&exec_printing(&env), 1);
    assert_token(&exec_printing(&env), 1);
    assert_eq!(server.count(), 1);
    thread::sleep(Duration::from_millis(3500));
    assert_token(&exec_printing(&env), 2);
    assert_token(&exec_printing(&env), 2);
    assert_eq!(server.count(), 2);
}

#[test]
fn short_or_unknown_lifetimes_are_never_cached() {
    let server = Server::start(|_, n| token(n, if n <= 2 { Some(30) } else { None }));
    let env = store_for(&server.url, &[]);
    for n in 1..=4 {
        assert_token(&exec_printing(&env), n);
    }
    assert_eq!(server.count(), 4);
    assert!(!env.store.join("cache/oauth2/api.age").exists());
}

#[test]
fn five_concurrent_execs_make_one_request() {
    let server = Server::start(|_, n| {
        Reply::After(Duration::from_millis(700), Box::new(token(n, Some(3600))))
    });
    let env = store_for(&server.url, &[]);
    let children: Vec<_> = (0..5)
        .map(|_| {
            let mut cmd = std::process::Command::new(TestEnv::bin());
            cmd.args(["exec", "--", "sh", "-c", "printf %s \"$API_TOKEN\""])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", &env.home)
                .env("AGENTCRED_STORE", &env.store)
                .env("CI", "true")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        assert_token(&child.wait_with_output().unwrap(), 1);
    }
    assert_eq!(server.count(), 1);
}

#[test]
fn a_rotated_secret_or_a_changed_configuration_never_reuses_a_token() {
    const NEW_SECRET: &str = "cs-rotated-5e2b";
    let server = Server::start_for(CLIENT_ID, &[SECRET, NEW_SECRET], |_, n| {
        token(n, Some(3600))
    });
    let env = store_for(&server.url, &[]);
    assert_token(&exec_printing(&env), 1);
    assert_token(&exec_printing(&env), 1);
    // The same endpoint and secret, another scope: a new token.
    add_client(&env, &server.url, &["--scope", "admin"]);
    assert_token(&exec_printing(&env), 2);
    assert_eq!(server.requests()[1].form()["scope"], "admin");
    // The same configuration, a rotated secret: a new token, asked for with the new secret.
    env.cmd()
        .args(["rotate", "api"])
        .write_stdin(NEW_SECRET)
        .assert()
        .success();
    assert_token(&exec_printing(&env), 3);
    assert_token(&exec_printing(&env), 3);
    assert_eq!(server.count(), 3);
    assert_eq!(
        server.requests()[2].client(),
        Some((CLIENT_ID.into(), NEW_SECRET.into()))
    );
}

#[test]
fn a_cache_file_copied_from_another_credential_is_not_used() {
    let server = Server::start(|_, n| token(n, Some(3600)));
    let env = store_for(&server.url, &[]);
    env.cmd()
        .args([
            "add",
            "other",
            "--kind",
            "oauth2",
            "--token-url",
            &server.url,
            "--client-id",
            CLIENT_ID,
        ])
        .write_stdin(SECRET)
        .assert()
        .success();
    env.cmd()
        .args(["token", "other"])
        .assert()
        .success()
        .stdout(token_text(1));
    let cache = env.store.join("cache/oauth2");
    fs::copy(cache.join("other.age"), cache.join("api.age")).unwrap();
    env.cmd()
        .args(["token", "api"])
        .assert()
        .success()
        .stdout(token_text(2));
    assert_eq!(server.count(), 2);
}

#[test]
fn a_cached_token_changed_by_someone_without_the_secret_is_not_used() {
    let server = Server::start(|_, n| token(n, Some(3600)));
    let env = store_for(&server.url, &[]);
    env.cmd()
        .args(["token", "api"])
        .assert()
        .success()
        .stdout(token_text(1));
    // The cache decrypts with a stock age and the user's identity; its header binds it.
    let file = env.store.join("cache/oauth2/api.age");
    let out = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(env.identity_path())
        .arg(&file)
        .output()
        .expect("the age CLI (Debian package age) is installed");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let plain = String::from_utf8(out.stdout).unwrap();
    let store_id = fs::read_to_string(env.manifest_path())
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("store_id = \"")?
                .strip_suffix('"')
                .map(String::from)
        })
        .unwrap();
    assert!(
        plain.starts_with(&format!("agentcred-oauth2-token/v1 {store_id} api\n{{")),
        "{plain}"
    );
    // Anyone may encrypt to the public recipient: swap in their own token, keep the MAC.
    let forged = plain.replace(&token_text(1), "planted-token");
    assert_ne!(forged, plain);
    let mut age = std::process::Command::new("age")
        .args(["-a", "-r", &env.recipient(), "-o"])
        .arg(&file)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    age.stdin
        .take()
        .unwrap()
        .write_all(forged.as_bytes())
        .unwrap();
    assert!(age.wait().unwrap().success());
    env.cmd()
        .args(["token", "api"])
        .assert()
        .success()
        .stdout(token_text(2));
    assert_eq!(server.count(), 2);
}

#[test]
fn a_token_type_other_than_bearer_is_accepted_with_a_note() {
    let server = Server::start(|_, _| {
        json(
            200,
            serde_json::json!({"access_token": "mac-token-1", "token_type": "MAC", "expires_in": 3600}),
        )
    });
    let env = store_for(&server.url, &[]);
    let out = exec_printing(&env);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "mac-token-1");
    assert_eq!(
        stderr_of(&out),
        "note: the token endpoint of api issued a token of type MAC, not Bearer; it is injected as is\n"
    );
}

/// Every way a token request fails: exit code, one `error:` line naming the cause, the
/// program never started, and no secret in the message.
#[test]
fn failures_exit_with_one_line_and_never_start_the_program() {
    let oauth_error =
        |status: u16, body: serde_json::Value| move |_: &Request, _| json(status, body.clone());
    let cases: Vec<(&str, Handler, i32, &str)> = vec![
        (
            "400 with an RFC 6749 error",
            Box::new(oauth_error(
                400,
                serde_json::json!({"error": "invalid_scope", "error_description": "scope admin is unknown"}),
            )),
            1,
            "answered HTTP 400 Bad Request: invalid_scope: \"scope admin is unknown\"",
        ),
        (
            "403 without a body",
            Box::new(|_: &Request, _| Reply::Answer(403, "text/plain", String::new())),
            1,
            "answered HTTP 403 Forbidden",
        ),
        (
            "404 with an HTML body",
            Box::new(|_: &Request, _| Reply::Answer(404, "text/html", "<h1>no</h1>".into())),
            1,
            "answered HTTP 404 Not Found",
        ),
        (
            "500",
            Box::new(|_: &Request, _| Reply::Answer(500, "text/plain", "oops".into())),
            1,
            "answered HTTP 500 Internal Server Error",
        ),
        (
            "503 with an RFC 6749 error",
            Box::new(oauth_error(
                503,
                serde_json::json!({"error": "temporarily_unavailable"}),
            )),
            1,
            "answered HTTP 503 Service Unavailable: temporarily_unavailable",
        ),
        (
            "200 that is not JSON",
            Box::new(|_: &Request, _| Reply::Answer(200, "text/html", "<html>hi</html>".into())),
            1,
            "answered HTTP 200 OK but not with a JSON token response",
        ),
        (
            "200 without access_token",
            Box::new(oauth_error(
                200,
                serde_json::json!({"token_type": "Bearer", "expires_in": 60}),
            )),
            1,
            "answered HTTP 200 OK without an access_token",
        ),
        (
            "200 with a number for a token",
            Box::new(oauth_error(200, serde_json::json!({"access_token": 12345}))),
            1,
            "answered HTTP 200 OK without an access_token",
        ),
        (
            "a redirect",
            Box::new(|_: &Request, _| Reply::Answer(302, "text/plain", String::new())),
            1,
            "answered HTTP 302 Found; token requests do not follow redirects",
        ),
        (
            "an error echoing the secret, with escape sequences",
            Box::new(oauth_error(
                400,
                serde_json::json!({"error": "invalid_request", "error_description": format!("\u{1b}[2Jbad secret {SECRET}")}),
            )),
            1,
            "invalid_request: \"\\u{1b}[2Jbad secret <redacted>\"",
        ),
        (
            "401 invalid_client",
            Box::new(oauth_error(
                401,
                serde_json::json!({"error": "invalid_client", "error_description": "unknown client"}),
            )),
            5,
            "cannot get an access token for api: the token endpoint http://127.0.0.1:",
        ),
        (
            "400 invalid_client",
            Box::new(oauth_error(
                400,
                serde_json::json!({"error": "invalid_client"}),
            )),
            5,
            "answered HTTP 400 Bad Request: invalid_client",
        ),
        (
            "401 without a body",
            Box::new(|_: &Request, _| Reply::Answer(401, "text/plain", String::new())),
            5,
            "answered HTTP 401 Unauthorized",
        ),
    ];
    let env = TestEnv::init();
    for (case, handler, code, expected) in cases {
        let server = Server::start(handler);
        add_client(&env, &server.url, &[]);
        for command in ["exec", "token"] {
            let out = if command == "exec" {
                exec_printing(&env)
            } else {
                env.cmd().args(["token", "api"]).output().unwrap()
            };
            let stderr = stderr_of(&out);
            assert_eq!(
                out.status.code(),
                Some(code),
                "{case} ({command}): {stderr}"
            );
            assert!(stderr.contains(expected), "{case} ({command}): {stderr}");
            assert!(stderr.starts_with("error: "), "{case}: {stderr}");
            if command == "exec" {
                assert!(
                    stderr.starts_with("error: not starting sh: "),
                    "{case}: {stderr}"
                );
            }
            let lines = stderr.lines().count();
            let hint = stderr
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("hint: "));
            assert!(lines == 1 || (lines == 2 && hint), "{case}: {stderr}");
            assert_eq!(code == 5, hint, "{case}: {stderr}");
            assert!(
                !stderr.contains(SECRET) && !stderr.contains("cs-9f3Kq2"),
                "{case}: {stderr}"
            );
            assert!(stdout_of(&out).is_empty(), "{case}");
            assert!(!marker(&env).exists(), "{case}: the program was started");
        }
        assert_eq!(server.count(), 2, "{case}");
    }
}

#[test]
fn a_refused_connection_fails_at_once() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = store_for(&format!("http://127.0.0.1:{port}/token"), &[]);
    let out = exec_printing(&env);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert_eq!(
        stderr_of(&out),
        format!(
            "error: not starting sh: cannot get an access token for api: the token endpoint http://127.0.0.1:{port}/token refused the connection\n"
        )
    );
    assert!(!marker(&env).exists());
}

#[test]
fn a_server_that_never_answers_times_out_after_10_s() {
    let server = Server::start(|_, _| Reply::Hang);
    let env = store_for(&server.url, &[]);
    let started = Instant::now();
    let out = exec_printing(&env);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(&format!(
            "the token endpoint {} did not answer within 10 s",
            server.url
        )),
        "{}",
        stderr_of(&out)
    );
    // Bounded: the request timeout, not the test harness's, ended it.
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(!marker(&env).exists());
    assert_eq!(server.count(), 1);
}

#[test]
fn only_https_token_urls_except_loopback() {
    let env = TestEnv::init();
    let before = env.snapshot();
    for (url, reason) in [
        ("http://auth.example.com/token", "only sent over https"),
        ("http://10.0.0.1/token", "only sent over https"),
        ("ftp://127.0.0.1/token", "only https://"),
        (
            "https://bot:pw@auth.example.com/token",
            "user name or password",
        ),
        ("auth.example.com/token", "not a URL"),
    ] {
        let out = env
            .cmd()
            .args([
                "add",
                "api",
                "--kind",
                "oauth2",
                "--token-url",
                url,
                "--client-id",
                "x",
            ])
            .write_stdin(SECRET)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{url}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(reason),
            "{url}: {}",
            stderr_of(&out)
        );
    }
    for (args, message) in [
        (
            &["--kind", "oauth2", "--token-url", "https://a.example/t"][..],
            "--kind oauth2 needs --token-url URL and --client-id ID",
        ),
        (
            &["--token-url", "https://a.example/t", "--client-id", "x"][..],
            "are for --kind oauth2",
        ),
        (
            &[
                "--kind",
                "oauth2",
                "--token-url",
                "https://a.example/t",
                "--client-id",
                "a\tb",
            ][..],
            "invalid client id",
        ),
    ] {
        let out = env
            .cmd()
            .args(["add", "api"])
            .args(args)
            .write_stdin(SECRET)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(message),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    assert_eq!(env.snapshot(), before, "a refused add changed the store");
    for url in [
        "https://auth.example.com/oauth/token",
        "http://localhost:8080/token",
        "http://127.0.0.2/token",
        "http://[::1]:9/token",
    ] {
        add_client(&env, url, &[]);
    }
}

#[test]
fn show_displays_the_endpoint_never_the_secret() {
    let env = store_for(
        "https://auth.example.com/oauth/token",
        &[
            "--scope",
            "read write",
            "--audience",
            "api://default",
            "--auth-method",
            "post",
        ],
    );
    let out = env.cmd().args(["show", "api"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    for line in [
        "kind:         oauth2",
        "token url:    https://auth.example.com/oauth/token",
        "client id:    bot:one",
        "scope:        read write",
        "audience:     api://default",
        "auth method:  post",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    assert!(!text.contains("cs-9f3Kq2"));
    let out = env.cmd().args(["show", "api", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "oauth2");
    assert_eq!(
        json["oauth2"],
        serde_json::json!({
            "token_url": "https://auth.example.com/oauth/token",
            "client_id": "bot:one",
            "scope": "read write",
            "audience": "api://default",
            "auth_method": "post",
        })
    );
    let out = env.cmd().args(["list", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["credentials"][0]["oauth2"]["auth_method"], "post");
}

#[test]
fn token_prints_exactly_is_audited_and_wants_an_oauth2_credential() {
    let server = Server::start(|_, n| token(n, Some(3600)));
    let env = store_for(&server.url, &[]);
    env.cmd()
        .args(["token", "API"])
        .assert()
        .success()
        .stdout(token_text(1))
        .stderr("");
    let out = env.cmd().args(["audit", "--json"]).output().unwrap();
    let events: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "token");
    assert_eq!(last["outcome"], "ok");
    assert_eq!(last["credentials"], serde_json::json!(["api"]));
    env.add("plain", b"v");
    let out = env.cmd().args(["token", "plain"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr_of(&out),
        "error: credential plain is of kind secret, not oauth2; `agentcred get plain` prints its value\n"
    );
    env.cmd().args(["token", "nope"]).assert().code(4);
    // `get` is the client secret itself, as stored.
    assert_eq!(env.get("api"), SECRET.as_bytes());
}

#[test]
fn tokens_and_secrets_are_never_written_in_plain_text() {
    let server = Server::start(|_, n| token(n, Some(3600)));
    let env = store_for(&server.url, &[]);
    assert_token(&exec_printing(&env), 1);
    env.cmd().args(["token", "api"]).assert().success();
    let cache = env.store.join("cache");
    for dir in [&cache, &cache.join("oauth2")] {
        let mode = fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
    let mut files = Vec::new();
    collect(env.dir.path(), &mut files);
    assert!(files.iter().any(|f| f.ends_with("cache/oauth2/api.age")));
    for file in &files {
        let bytes = fs::read(file).unwrap();
        for needle in [token_text(1).as_bytes(), SECRET.as_bytes(), b"cs-9f3Kq2"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds a secret in plain text",
                file.display()
            );
        }
        if file.starts_with(&cache) {
            let mode = fs::metadata(file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
    }
    // rm takes the cached token with it.
    env.cmd().args(["rm", "api", "--yes"]).assert().success();
    assert!(!cache.join("oauth2/api.age").exists());
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            collect(&path, files);
        } else if meta.is_file() {
            files.push(path);
        }
    }
}

/// `rotate --verify` on an oauth2 credential: the new client secret must obtain a token,
/// and the command gets that token, never the secret. A secret the endpoint refuses is
/// not stored and the command never runs.
#[test]
fn rotate_verify_checks_a_new_client_secret_by_minting_a_token() {
    const NEW_SECRET: &str = "cs-rotated-77aa";
    let server = Server::start_for(CLIENT_ID, &[SECRET, NEW_SECRET], |_, n| {
        token(n, Some(3600))
    });
    let env = store_for(&server.url, &[]);
    let verify = format!("touch marker; test \"$API_TOKEN\" = {}", token_text(1));
    env.cmd()
        .args(["rotate", "api", "--verify", &verify])
        .write_stdin(NEW_SECRET)
        .assert()
        .success();
    assert!(marker(&env).exists(), "the verify command ran");
    assert_eq!(
        server.requests()[0].client(),
        Some((CLIENT_ID.into(), NEW_SECRET.into()))
    );
    assert_eq!(env.get("api"), NEW_SECRET.as_bytes());
    // The token minted to verify is not cached: exec asks again, with the new secret.
    assert_token(&exec_printing(&env), 2);

    fs::remove_file(marker(&env)).unwrap();
    let before = env.snapshot();
    let out = env
        .cmd()
        .args(["rotate", "api", "--verify", "touch marker"])
        .write_stdin("cs-not-registered")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.starts_with(
            "error: api keeps its old value: its new client secret did not obtain an access token"
        ) && err.contains("invalid_client"),
        "{err}"
    );
    assert!(!err.contains("cs-not-registered"), "{err}");
    assert!(!marker(&env).exists(), "the verify command never ran");
    assert_eq!(env.snapshot(), before, "the store is unchanged");
}

/// Issue 14 item 9: a server that echoes the client's credentials back in its error, in
/// the forms it received them (Basic header, form body) or cut short.
#[test]
fn server_errors_echoing_the_secret_in_any_form_are_redacted() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw_basic = b64.encode(format!("{CLIENT_ID}:{SECRET}"));
    let cases: Vec<(&str, Handler, &[&str])> = vec![
        (
            "the Authorization header it got",
            Box::new(|r: &Request, _| {
                json(
                    400,
                    serde_json::json!({"error": "invalid_request", "error_description": format!("bad header {}", r.header("authorization").unwrap_or(""))}),
                )
            }),
            &[],
        ),
        (
            "the form-encoded secret",
            Box::new(|r: &Request, _| {
                let body = r.body.clone();
                json(
                    400,
                    serde_json::json!({"error": "invalid_request", "error_description": format!("body was {body}")}),
                )
            }),
            &["--auth-method", "post"],
        ),
        (
            "base64 of id:secret as sent before encoding",
            Box::new(move |_: &Request, _| {
                json(
                    400,
                    serde_json::json!({"error": "invalid_request", "error_description": format!("Basic {raw_basic}")}),
                )
            }),
            &[],
        ),
        (
            "a long prefix of the secret",
            Box::new(|_: &Request, _| {
                json(
                    400,
                    serde_json::json!({"error": "invalid_request", "error_description": format!("secret starts {}...", &SECRET[..14])}),
                )
            }),
            &[],
        ),
        (
            "the secret as the error code",
            Box::new(|_: &Request, _| json(400, serde_json::json!({"error": SECRET}))),
            &[],
        ),
    ];
    let b64 = base64::engine::general_purpose::STANDARD;
    let forbidden = [
        SECRET.to_string(),
        SECRET[..14].to_string(),
        "cs-9f3Kq2+secret%3A%26".to_string(),
        b64.encode(format!("{CLIENT_ID}:{SECRET}"))[..20].to_string(),
        b64.encode("bot%3Aone:cs-9f3Kq2+secret%3A%26%3D%25%2B%2Fx")[..20].to_string(),
        // The part of the Basic header that only the secret determines.
        b64.encode("bot%3Aone:cs-9f3Kq2+secret%3A%26%3D%25%2B%2Fx")[16..36].to_string(),
    ];
    for (what, handler, extra) in cases {
        let server = Server::start(handler);
        let env = store_for(&server.url, extra);
        let out = exec_printing(&env);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(err.contains("answered HTTP 400"), "{what}: {err}");
        assert!(err.contains("<redacted>"), "{what}: {err}");
        for form in &forbidden {
            assert!(!err.contains(form.as_str()), "{what}: {form:?} in {err}");
        }
        assert!(!marker(&env).exists());
    }
}

/// Issue 14 item 5: an access token chosen by a hostile endpoint stays inert when the
/// exported file is sourced, and arrives exactly.
#[test]
fn a_hostile_access_token_exported_runs_nothing_when_sourced() {
    const EVIL: &str = "`touch PWNED`$(touch PWNED)'; touch PWNED; '\"; touch PWNED; \"";
    let server = Server::start(|_, _| {
        json(
            200,
            serde_json::json!({"access_token": EVIL, "token_type": "Bearer", "expires_in": 3600}),
        )
    });
    let env = store_for(&server.url, &[]);
    for format in ["dotenv", "shell"] {
        let out = env
            .cmd()
            .args(["export", "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let file = env.dir.path().join(format!("tokens.{format}"));
        fs::write(&file, &out.stdout).unwrap();
        for shell in ["sh", "bash", "dash"] {
            let got = std::process::Command::new(shell)
                .arg("-c")
                .arg(format!(". '{}'; printf %s \"$API_TOKEN\"", file.display()))
                .current_dir(env.dir.path())
                .output()
                .unwrap();
            assert!(got.status.success(), "{shell}: {}", stderr_of(&got));
            assert!(
                !env.dir.path().join("PWNED").exists(),
                "{format} sourced by {shell} ran the token"
            );
            assert_eq!(stdout_of(&got), EVIL, "{format} in {shell}");
        }
    }
}
