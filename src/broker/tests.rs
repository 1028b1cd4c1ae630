//! The broker against a plain-HTTP upstream on loopback that records what it receives.
//! (The HTTPS upstream and clients we did not write are in the integration tests.)
#![cfg(test)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::*;

const KEY: &str = "sk-proj-REALKEY0123456789abcdefXYZ";

/// What the upstream saw: one request's head (lowercase header names) and body.
#[derive(Clone, Default)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// A one-thread HTTP/1.1 upstream: `/echo` answers with the credential header it got,
/// `/redirect` with a 302, anything else 200 "ok". It reads bodies by Content-Length or
/// chunked encoding.
fn upstream() -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let log = log.clone();
            std::thread::spawn(move || serve_one(stream, &log));
        }
    });
    (url, seen)
}

fn serve_one(stream: std::net::TcpStream, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            // Names lowercase, values as sent.
            let line = match line.split_once(':') {
                Some((name, value)) => format!("{}:{value}", name.to_ascii_lowercase()),
                None => line.to_ascii_lowercase(),
            };
            head.push_str(&line);
        }
        let header = |name: &str| {
            head.lines().find_map(|l| {
                l.strip_prefix(&format!("{name}: "))
                    .map(|v| v.trim().to_string())
            })
        };
        let mut body = Vec::new();
        if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(len, 0);
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
                    return;
                };
                let mut chunk = vec![0; n + 2];
                if reader.read_exact(&mut chunk).is_err() {
                    return;
                }
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        let first = head.lines().next().unwrap_or_default().to_string();
        log.lock().unwrap().push(Seen {
            head: head.clone(),
            body,
        });
        let response = if first.contains("/echo") {
            let got = header("authorization").unwrap_or_default();
            let text = format!("{{\"you_sent\":\"{got}\"}}");
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-echo: {got}\r\n\r\n{text}",
                text.len()
            )
        } else if first.contains("/gzip") {
            // Compressed although the broker asked for identity: its bytes cannot be
            // searched for the key.
            "HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 4\r\n\r\nzzzz".to_string()
        } else if first.contains("/plain-encoding") {
            "HTTP/1.1 200 OK\r\ncontent-encoding: identity\r\ncontent-length: 2\r\n\r\nok"
                .to_string()
        } else if first.contains("/redirect") {
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/elsewhere\r\ncontent-length: 0\r\n\r\n"
                .to_string()
        } else {
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_string()
        };
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn start(url: &str) -> (Broker, Arc<Mutex<Vec<AuditEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let broker = Broker::start(Config {
        routes: vec![RouteConfig {
            name: "openai".into(),
            upstream: Upstream::new(
                &format!("{url}/v1"),
                "Authorization: Bearer {}",
                Some("OPENAI_BASE_URL"),
            )
            .unwrap(),
            secret: SecretSource::Static(SecretSlice::from(KEY.as_bytes().to_vec())),
            scrub_also: Vec::new(),
        }],
        max_request_body: 1000,
        audit: Some(Box::new(move |e| sink.lock().unwrap().push(e))),
    })
    .unwrap();
    (broker, events)
}

fn send(broker: &Broker, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    broker
        .send("openai", method, path, &headers, body, 1 << 20)
        .unwrap()
}

#[test]
fn placeholders_look_like_keys_and_differ() {
    let a = placeholder_for(Some(KEY.as_bytes())).unwrap();
    let b = placeholder_for(Some(KEY.as_bytes())).unwrap();
    assert!(a.starts_with("sk-proj-agentcred-"), "{a}");
    assert_eq!(a.len(), KEY.len().max("sk-proj-agentcred-".len() + 32));
    assert_ne!(a, b);
    assert!(!a.contains("REALKEY"));
    let minted = placeholder_for(None).unwrap();
    assert!(
        minted.starts_with("agentcred-") && minted.len() == 42,
        "{minted}"
    );
}

#[test]
fn brokers_with_the_real_header_and_scrubs_the_echo() {
    let (url, seen) = upstream();
    let (broker, events) = start(&url);
    let placeholder = broker.route("openai").unwrap().placeholder.clone();
    let reply = send(
        &broker,
        "GET",
        "/echo",
        &[
            ("Authorization", &format!("Bearer {placeholder}")),
            ("X-Other", "1"),
        ],
        b"",
    );
    assert_eq!(reply.status, 200);
    let body = String::from_utf8(reply.body).unwrap();
    assert!(!body.contains(KEY), "{body}");
    assert!(body.contains("<agentcred:scrubbed>"), "{body}");
    assert_eq!(
        body.len(),
        format!("{{\"you_sent\":\"Bearer {KEY}\"}}").len()
    );
    let echo = reply.headers.iter().find(|(n, _)| n == "x-echo").unwrap();
    assert!(
        !echo.1.contains(KEY) && echo.1.contains("<agentcred:scrubbed>"),
        "{}",
        echo.1
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let head = &seen[0].head;
    assert!(head.starts_with("get /v1/echo http/1.1"), "{head}");
    assert!(
        head.contains(&format!("authorization: Bearer {KEY}\r\n")),
        "{head}"
    );
    assert!(!head.contains(&placeholder), "{head}");
    assert!(head.contains("x-other: 1"), "{head}");
    assert!(
        head.contains(&format!("host: {}", url.trim_start_matches("http://"))),
        "{head}"
    );
    broker.stop();
    let events = events.lock().unwrap();
    assert_eq!(
        *events,
        [AuditEvent {
            credential: "openai".into(),
            method: "GET".into(),
            host: "127.0.0.1".into(),
            path: "/v1/echo".into(),
            status: 200,
            decision: Decision::Brokered,
        }]
    );
}

#[test]
fn refuses_wrong_token_placeholder_and_oversize() {
    let (url, seen) = upstream();
    let (broker, events) = start(&url);
    let info = broker.route("openai").unwrap();
    let placeholder = info.placeholder.clone();
    // Wrong session token: same length, one letter changed.
    let port = broker.port();
    let agent = crate::util::http::agent(true, Duration::from_secs(10));
    let good = info.base_url.clone();
    let token = good.split('/').nth(3).unwrap().to_string();
    let mut wrong = token.clone().into_bytes();
    wrong[0] = if wrong[0] == b'a' { b'b' } else { b'a' };
    let wrong = String::from_utf8(wrong).unwrap();
    let status = agent
        .get(&format!("http://127.0.0.1:{port}/{wrong}/openai/models"))
        .call()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 401);
    let status = agent
        .get(&format!("http://127.0.0.1:{port}/openai/models"))
        .call()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 401);

    let reply = send(
        &broker,
        "GET",
        &format!("/models?key={placeholder}"),
        &[],
        b"",
    );
    assert_eq!(reply.status, 403);
    let reply = send(
        &broker,
        "POST",
        "/chat",
        &[],
        format!("{{\"prompt\":\"say {placeholder}\"}}").as_bytes(),
    );
    assert_eq!(reply.status, 403);
    // Encoded forms count too: base64 in a body, percent-encoding (even of unreserved
    // characters) in a query.
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("user:{placeholder}"));
    let reply = send(
        &broker,
        "POST",
        "/chat",
        &[],
        format!("{{\"basic\":\"{encoded}\"}}").as_bytes(),
    );
    assert_eq!(reply.status, 403, "{encoded}");
    let encoded = placeholder.replace('-', "%2D");
    let reply = send(&broker, "GET", &format!("/models?q={encoded}"), &[], b"");
    assert_eq!(reply.status, 403, "{encoded}");
    let reply = send(&broker, "GET", &format!("/files/{encoded}"), &[], b"");
    assert_eq!(reply.status, 403, "{encoded}");
    let reply = send(&broker, "POST", "/chat", &[], &[b'x'; 2000]);
    assert_eq!(reply.status, 413);
    // A clean body goes through.
    let reply = send(&broker, "POST", "/chat", &[], b"{\"prompt\":\"hello\"}");
    assert_eq!(reply.status, 200);
    let seen = seen.lock().unwrap().clone();
    // Only the clean request reached the upstream in full.
    let complete: Vec<_> = seen.iter().filter(|s| s.head.starts_with("post")).collect();
    assert_eq!(
        complete.len(),
        1,
        "{:?}",
        seen.iter().map(|s| s.head.clone()).collect::<Vec<_>>()
    );
    assert_eq!(complete[0].body, b"{\"prompt\":\"hello\"}");
    broker.stop();
    let events = events.lock().unwrap();
    let decisions: Vec<(u16, Decision)> = events.iter().map(|e| (e.status, e.decision)).collect();
    assert_eq!(
        decisions,
        [
            (403, Decision::Blocked),
            (403, Decision::Blocked),
            (403, Decision::Blocked),
            (403, Decision::Blocked),
            (403, Decision::Blocked),
            (413, Decision::Blocked),
            (200, Decision::Brokered),
        ]
    );
    assert_eq!(events[0].path, "/v1/models");
}

#[test]
fn redirects_go_back_to_the_client() {
    let (url, seen) = upstream();
    let (broker, _) = start(&url);
    let reply = send(&broker, "GET", "/redirect", &[], b"");
    assert_eq!(reply.status, 302);
    let location = reply.headers.iter().find(|(n, _)| n == "location").unwrap();
    assert_eq!(location.1, "http://127.0.0.1:1/elsewhere");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn minted_secrets_are_fetched_and_scrubbed() {
    let (url, seen) = upstream();
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let broker = Broker::start(Config {
        routes: vec![RouteConfig {
            name: "openai".into(),
            upstream: Upstream::new(&url, "Authorization: Bearer {}", None).unwrap(),
            secret: SecretSource::Minted(Arc::new(move || {
                *counter.lock().unwrap() += 1;
                Ok((SecretSlice::from(b"access-token-0123456789".to_vec()), None))
            })),
            scrub_also: vec![SecretSlice::from(b"client-secret-xyz".to_vec())],
        }],
        max_request_body: 1000,
        audit: None,
    })
    .unwrap();
    for _ in 0..2 {
        let reply = send(&broker, "GET", "/echo", &[], b"");
        let body = String::from_utf8(reply.body).unwrap();
        assert!(!body.contains("access-token"), "{body}");
    }
    assert_eq!(*calls.lock().unwrap(), 1);
    assert!(
        seen.lock().unwrap()[0]
            .head
            .contains("authorization: Bearer access-token-0123456789")
    );
}

#[test]
fn a_compressed_response_is_not_passed_on_unchecked() {
    let (url, _) = upstream();
    let (broker, events) = start(&url);
    let reply = send(&broker, "GET", "/gzip", &[], b"");
    assert_eq!(reply.status, 502);
    assert!(
        String::from_utf8_lossy(&reply.body).contains("Content-Encoding gzip"),
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    // `identity` is no encoding at all: passed on.
    let reply = send(&broker, "GET", "/plain-encoding", &[], b"");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"ok");
    broker.stop();
    let events = events.lock().unwrap();
    let decisions: Vec<(u16, Decision)> = events.iter().map(|e| (e.status, e.decision)).collect();
    assert_eq!(
        decisions,
        [(502, Decision::Blocked), (200, Decision::Brokered)]
    );
}
