//! Rotation: policies and their status boundaries, durations, expiry-aware values, `rotate`
//! with `--generate`/`--verify`, the `due` gate, exec's overdue warning, and crash safety.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{TestEnv, stderr_of, stdout_of};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

const DAY: i64 = 24 * 3600;

/// Now, whole seconds: every date below is computed from it, before the command runs, so
/// the command's own "now" is the same or a little later.
fn now() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).unwrap()
}

fn plus(at: Timestamp, seconds: i64) -> Timestamp {
    at + SignedDuration::from_secs(seconds)
}

fn add(env: &TestEnv, name: &str, args: &[&str], value: &str) -> std::process::Output {
    let out = env
        .cmd()
        .arg("add")
        .arg(name)
        .args(args)
        .write_stdin(value)
        .output()
        .unwrap();
    assert!(out.status.success(), "add {name}: {}", stderr_of(&out));
    out
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout_of(out), stderr_of(out)))
}

fn show(env: &TestEnv, name: &str) -> Value {
    let out = env.cmd().args(["show", name, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    json(&out)
}

fn statuses(env: &TestEnv) -> Vec<(String, String)> {
    let out = env.cmd().args(["list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    json(&out)["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ts(value: &Value) -> Timestamp {
    value.as_str().unwrap().parse().unwrap()
}

/// A real JWT: base64url JSON header and payload, and a dummy signature.
fn jwt(claims: &str) -> String {
    format!(
        "{}.{}.ZHVtbXktc2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

const FAKE_PRIVATE_KEY: &str =
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDdummykeymaterial";

fn service_account_json(key_id: &str) -> String {
    format!(
        r#"{{
  "type": "service_account",
  "project_id": "demo-project",
  "private_key_id": "{key_id}",
  "private_key": "-----BEGIN PRIVATE KEY-----\n{FAKE_PRIVATE_KEY}\n-----END PRIVATE KEY-----\n",
  "client_email": "bot@demo-project.iam.gserviceaccount.com",
  "client_id": "100000000000000000001",
  "token_uri": "https://oauth2.googleapis.com/token"
}}
"#
    )
}

#[test]
fn every_status_boundary_through_the_cli() {
    let env = TestEnv::init();
    let t = now();
    let today = t.strftime("%Y-%m-%d").to_string();
    let tomorrow = plus(t, DAY).strftime("%Y-%m-%d").to_string();
    let at = |seconds: i64| plus(t, seconds).to_string();
    // Explicit due dates.
    add(&env, "due-today", &["--due", &today], "v");
    add(&env, "due-tomorrow", &["--due", &tomorrow], "v");
    add(&env, "due-when-added", &["--due", &at(0)], "v");
    add(&env, "due-at-window-edge", &["--due", &at(14 * DAY)], "v");
    add(
        &env,
        "due-past-window",
        &["--due", &at(14 * DAY + 3600)],
        "v",
    );
    // Periods: the store default (90d) and an explicit one.
    add(
        &env,
        "period-ends-now",
        &["--rotated-at", &at(-90 * DAY)],
        "v",
    );
    add(
        &env,
        "period-at-window-edge",
        &["--rotated-at", &at(-76 * DAY)],
        "v",
    );
    add(
        &env,
        "period-past-window",
        &[
            "--rotate-every",
            "30d",
            "--rotated-at",
            &at(-16 * DAY + 3600),
        ],
        "v",
    );
    add(
        &env,
        "period-ended-weeks-ago",
        &["--rotate-every", "1y", "--rotated-at", &at(-400 * DAY)],
        "v",
    );
    add(
        &env,
        "no-rotation",
        &["--no-rotation", "--rotated-at", "2001-01-01"],
        "v",
    );
    let expected = [
        ("due-at-window-edge", "due-soon"),
        ("due-past-window", "ok"),
        ("due-today", "overdue"),
        ("due-tomorrow", "due-soon"),
        ("due-when-added", "overdue"),
        ("no-rotation", "never"),
        ("period-at-window-edge", "due-soon"),
        ("period-ended-weeks-ago", "overdue"),
        ("period-ends-now", "overdue"),
        ("period-past-window", "ok"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    assert_eq!(statuses(&env), expected);
    // `due` lists exactly the overdue and due-soon ones, soonest first.
    let out = env.cmd().args(["due", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let due = json(&out);
    let names: Vec<&str> = due["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "period-ended-weeks-ago",
            "due-today",
            "due-when-added",
            "period-ends-now",
            "due-tomorrow",
            "due-at-window-edge",
            "period-at-window-edge",
        ]
    );
    assert_eq!(due["overdue"], 4);
    assert_eq!(due["due_soon"], 3);
    assert_eq!(due["window"], "14d");
    // A wider window takes in the next ones, with their status against that window.
    let out = env
        .cmd()
        .args(["due", "--json", "--within", "15d"])
        .output()
        .unwrap();
    let due = json(&out);
    assert_eq!(due["window"], "15d");
    let wider: Vec<(&str, &str)> = due["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(wider.len(), 9, "{wider:?}");
    assert!(wider.contains(&("due-past-window", "due-soon")));
    assert!(wider.contains(&("period-past-window", "due-soon")));
    // The human table carries dates and relative ages.
    let out = env.cmd().arg("due").output().unwrap();
    let text = stdout_of(&out);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.contains(&format!("{tomorrow} (in ")), "{text}");
    assert!(text.contains(" ago)  overdue"), "{text}");
}

#[test]
fn durations_parse_and_bad_ones_exit_2() {
    let env = TestEnv::init();
    let rotated = now();
    let rotated_text = rotated.to_string();
    for (period, due) in [
        ("90d", plus(rotated, 90 * DAY)),
        ("12w", plus(rotated, 84 * DAY)),
        ("36h", plus(rotated, 36 * 3600)),
        (
            "1y",
            rotated
                .to_zoned(jiff::tz::TimeZone::UTC)
                .checked_add(jiff::Span::new().years(1))
                .unwrap()
                .timestamp(),
        ),
        (
            "6mo",
            rotated
                .to_zoned(jiff::tz::TimeZone::UTC)
                .checked_add(jiff::Span::new().months(6))
                .unwrap()
                .timestamp(),
        ),
    ] {
        let name = format!("every-{period}");
        add(
            &env,
            &name,
            &["--rotate-every", period, "--rotated-at", &rotated_text],
            "v",
        );
        let shown = show(&env, &name);
        assert_eq!(shown["rotate_every"], period);
        assert_eq!(ts(&shown["due_at"]), due, "{period}");
    }
    let before = env.snapshot();
    for bad in [
        "90",
        "d",
        "0d",
        "-1d",
        "1.5d",
        "90 d",
        "1m",
        "1yr",
        "",
        "99999999999d",
    ] {
        let out = env
            .cmd()
            .args(["add", "x", &format!("--rotate-every={bad}")])
            .write_stdin("v")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(err.contains("invalid duration"), "{bad:?}: {err}");
        let out = env
            .cmd()
            .args(["due", &format!("--within={bad}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "due --within {bad:?}");
    }
    for bad in ["2027-02-30", "tomorrow", "31/01/2027"] {
        env.cmd()
            .args(["add", "x", "--due", bad])
            .write_stdin("v")
            .assert()
            .code(2);
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_jwt_expiry_sets_the_due_date_unless_the_user_gives_a_policy() {
    let env = TestEnv::init();
    let t = now();
    let exp = plus(t, 30 * DAY);
    let token = jwt(&format!(
        r#"{{"sub":"bot","aud":"api","exp":{},"secret_claim":"s3cr3t"}}"#,
        exp.as_second()
    ));
    let out = add(&env, "api-token", &[], &token);
    assert!(
        stderr_of(&out).contains("when the JWT expires"),
        "{}",
        stderr_of(&out)
    );
    let shown = show(&env, "api-token");
    assert_eq!(shown["value_info"]["format"], "jwt");
    assert_eq!(ts(&shown["value_info"]["expires_at"]), exp);
    assert_eq!(ts(&shown["due_at"]), exp);
    assert_eq!(shown["rotate_every"], Value::Null);
    assert_eq!(shown["status"], "ok");
    let text = stdout_of(&env.cmd().args(["show", "api-token"]).output().unwrap());
    assert!(text.contains("value:        JWT"), "{text}");
    assert!(text.contains("expires:      "), "{text}");
    assert!(text.contains("when the value expires"), "{text}");
    let manifest = fs::read_to_string(env.manifest_path()).unwrap();
    assert!(!manifest.contains(&token[..20]) && !manifest.contains("s3cr3t"));

    // The user's policy wins, with a note when the token dies first.
    let out = add(&env, "with-period", &["--rotate-every", "90d"], &token);
    assert!(
        stderr_of(&out).contains("note: the value of with-period expires on"),
        "{}",
        stderr_of(&out)
    );
    let shown = show(&env, "with-period");
    assert_eq!(
        ts(&shown["due_at"]),
        plus(ts(&shown["rotated_at"]), 90 * DAY)
    );
    assert_eq!(ts(&shown["value_info"]["expires_at"]), exp);
    add(&env, "with-date", &["--due", "2099-01-01"], &token);
    assert_eq!(
        ts(&show(&env, "with-date")["due_at"]),
        "2099-01-01T00:00:00Z".parse().unwrap()
    );

    // Expired and soon-expiring tokens.
    let expired = jwt(&format!(r#"{{"exp":{}}}"#, plus(t, -DAY).as_second()));
    add(&env, "expired", &[], &expired);
    let soon = jwt(&format!(r#"{{"exp":{}}}"#, plus(t, 5 * DAY).as_second()));
    add(&env, "soon", &[], &soon);
    let no_exp = jwt(r#"{"sub":"forever"}"#);
    add(&env, "no-exp", &[], &no_exp);
    let shown = show(&env, "no-exp");
    assert_eq!(shown["value_info"]["format"], "jwt");
    assert!(shown["value_info"].get("expires_at").is_none());
    assert_eq!(shown["rotate_every"], "90d");
    let all = statuses(&env);
    for (name, status) in [
        ("expired", "overdue"),
        ("soon", "due-soon"),
        ("no-exp", "ok"),
    ] {
        assert!(
            all.contains(&(name.into(), status.into())),
            "{name}: {all:?}"
        );
    }

    // Rotating to a new token moves the due date to its expiry; to a plain key, back to
    // the period.
    let later = plus(t, 60 * DAY);
    env.cmd()
        .args(["rotate", "api-token"])
        .write_stdin(jwt(&format!(r#"{{"exp":{}}}"#, later.as_second())))
        .assert()
        .success();
    assert_eq!(ts(&show(&env, "api-token")["due_at"]), later);
    env.cmd()
        .args(["rotate", "api-token"])
        .write_stdin("plain-key")
        .assert()
        .success();
    let shown = show(&env, "api-token");
    assert!(shown.get("value_info").is_none(), "{shown}");
    assert_eq!(
        ts(&shown["due_at"]),
        plus(ts(&shown["rotated_at"]), 90 * DAY)
    );

    // import reads tokens too.
    let dotenv = env.dir.path().join("tokens.env");
    fs::write(&dotenv, format!("IMPORTED_TOKEN={soon}\nPLAIN=abc\n")).unwrap();
    env.cmd().arg("import").arg(&dotenv).assert().success();
    assert_eq!(
        ts(&show(&env, "imported-token")["due_at"]),
        plus(t, 5 * DAY)
    );
    assert!(show(&env, "plain").get("value_info").is_none());
}

#[test]
fn a_service_account_key_records_its_account_and_key_id_never_the_key() {
    let env = TestEnv::init();
    let key_file = env.dir.path().join("sa.json");
    fs::write(
        &key_file,
        service_account_json("1111111111111111111111111111111111111111"),
    )
    .unwrap();
    env.cmd()
        .args(["add", "gcp-sa", "--from-file"])
        .arg(&key_file)
        .assert()
        .success();
    let shown = show(&env, "gcp-sa");
    let info = &shown["value_info"];
    assert_eq!(info["format"], "google-service-account");
    assert_eq!(
        info["client_email"],
        "bot@demo-project.iam.gserviceaccount.com"
    );
    assert_eq!(
        info["private_key_id"],
        "1111111111111111111111111111111111111111"
    );
    assert!(info.get("expires_at").is_none());
    // No expiry in a key file: the store's period applies.
    assert_eq!(shown["rotate_every"], "90d");
    let text = stdout_of(&env.cmd().args(["show", "gcp-sa"]).output().unwrap());
    assert!(
        text.contains("value:        Google service-account key"),
        "{text}"
    );
    assert!(
        text.contains("client email: bot@demo-project.iam.gserviceaccount.com"),
        "{text}"
    );
    assert!(
        text.contains("key id:       1111111111111111111111111111111111111111"),
        "{text}"
    );
    for output in [
        text,
        fs::read_to_string(env.manifest_path()).unwrap(),
        stdout_of(&env.cmd().args(["list", "--json"]).output().unwrap()),
    ] {
        assert!(!output.contains(FAKE_PRIVATE_KEY) && !output.contains("PRIVATE KEY"));
    }
    // A new key for the same account: the new key id is recorded.
    fs::write(
        &key_file,
        service_account_json("2222222222222222222222222222222222222222"),
    )
    .unwrap();
    env.cmd()
        .args(["rotate", "gcp-sa", "--from-file"])
        .arg(&key_file)
        .assert()
        .success();
    assert_eq!(
        show(&env, "gcp-sa")["value_info"]["private_key_id"],
        "2222222222222222222222222222222222222222"
    );
    assert_eq!(env.get("gcp-sa"), fs::read(&key_file).unwrap());
}

#[test]
fn rotate_replaces_the_value_restarts_the_clock_and_records_history() {
    let env = TestEnv::init();
    add(&env, "k", &["--rotated-at", "2020-01-01"], "old-value");
    add(
        &env,
        "one-off",
        &["--due", "2020-06-01", "--rotated-at", "2020-01-01"],
        "old-value",
    );
    assert_eq!(show(&env, "k")["status"], "overdue");
    let t = now();
    let out = env
        .cmd()
        .args(["rotate", "k"])
        .write_stdin("new-value\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).starts_with("rotated k (due "),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(stdout_of(&out), "");
    assert_eq!(env.get("k"), b"new-value");
    let shown = show(&env, "k");
    assert_eq!(shown["status"], "ok");
    let rotated = ts(&shown["rotated_at"]);
    assert!(rotated >= t && rotated <= plus(t, 60), "{rotated}");
    assert_eq!(ts(&shown["due_at"]), plus(rotated, 90 * DAY));
    assert_eq!(ts(&shown["created_at"]), ts(&shown["history"][0]["at"]));
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["action"], "rotated");
    assert!(
        history[1]["by"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}@", common::account()))
    );
    let text = stdout_of(&env.cmd().args(["show", "k"]).output().unwrap());
    assert!(
        text.contains(&format!("rotated   {}@", common::account())),
        "{text}"
    );
    assert!(!text.contains("new-value"), "{text}");
    assert!(
        !fs::read_to_string(env.manifest_path())
            .unwrap()
            .contains("new-value")
    );

    // A due date given with --due was for the old value: after rotation the period applies.
    let out = env
        .cmd()
        .args(["rotate", "one-off"])
        .write_stdin("fresh")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("the one-off due date 2020-06-01 was for the old value"),
        "{}",
        stderr_of(&out)
    );
    let shown = show(&env, "one-off");
    assert_eq!(shown["rotate_every"], "90d");
    assert_eq!(
        ts(&shown["due_at"]),
        plus(ts(&shown["rotated_at"]), 90 * DAY)
    );

    // Failures leave the store as it was.
    let before = env.snapshot();
    env.cmd()
        .args(["rotate", "k"])
        .write_stdin("new-value")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "the new value of k is the same as the old one; nothing was rotated",
        ));
    env.cmd()
        .args(["rotate", "k"])
        .write_stdin("")
        .assert()
        .code(2);
    env.cmd()
        .args(["rotate", "nope"])
        .write_stdin("x")
        .assert()
        .code(4)
        .stderr(predicates::str::contains("credential nope not found"));
    env.cmd()
        .args(["rotate", "k", "--from-file", "/nonexistent/file"])
        .assert()
        .code(1);
    env.cmd()
        .args(["rotate", "k", "--from-file", "x", "--generate", "echo y"])
        .assert()
        .code(2);
    assert_eq!(env.snapshot(), before);

    // --from-file keeps bytes exactly.
    let file = env.dir.path().join("new.bin");
    fs::write(&file, b"line1\nline2\n\n").unwrap();
    env.cmd()
        .args(["rotate", "k", "--from-file"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(env.get("k"), b"line1\nline2\n\n");
}

#[test]
fn verify_success_stores_the_value_and_failure_keeps_the_old_one() {
    let env = TestEnv::init();
    add(&env, "db-password", &[], "old-pw");
    let before = env.snapshot();
    // The command sees the new value in the credential's variable; the store still holds
    // the old one meanwhile (and this nested agentcred, which takes the shared lock, would
    // deadlock if rotate held the exclusive lock while verifying). The identity variables
    // are withheld, as exec withholds them.
    let verify = r#"test "$DB_PASSWORD" = new-pw && test -z "$AGENTCRED_IDENTITY" && test "$("$AC" get db-password)" = old-pw && echo checked-ok"#;
    let out = env
        .cmd()
        .env("AC", TestEnv::bin())
        .env("AGENTCRED_IDENTITY", env.identity_text())
        .args(["rotate", "db-password", "--verify", verify])
        .write_stdin("new-pw")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "", "the command's stdout goes to stderr");
    assert!(
        stderr_of(&out).contains("checked-ok"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(env.get("db-password"), b"new-pw");
    assert_ne!(env.snapshot(), before);

    // A failing check: exit 1, saying so, and the old value stays, byte for byte.
    let before = env.snapshot();
    for (verify, outcome) in [
        (
            "test \"$DB_PASSWORD\" = something-else || exit 3",
            "exited with status 3",
        ),
        ("kill -9 $$", "was killed by signal 9"),
    ] {
        let out = env
            .cmd()
            .args(["rotate", "db-password", "--verify", verify])
            .write_stdin("bad-pw")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
        assert_eq!(
            stderr_of(&out).lines().last().unwrap(),
            format!("error: the --verify command {outcome}; db-password keeps its old value")
        );
        assert!(!stderr_of(&out).contains("bad-pw"));
        assert_eq!(env.snapshot(), before);
        assert_eq!(env.get("db-password"), b"new-pw");
    }
    // A value that cannot be an environment variable cannot be verified.
    env.cmd()
        .args(["rotate", "db-password", "--verify", "true"])
        .write_stdin(b"nul\0byte".to_vec())
        .assert()
        .code(1)
        .stderr(predicates::str::contains("NUL byte"));
    assert_eq!(env.snapshot(), before);
}

#[test]
fn generate_takes_stdout_and_a_failure_leaves_the_old_value() {
    let env = TestEnv::init();
    add(&env, "k", &[], "old");
    let before = env.snapshot();
    for (generate, outcome) in [
        ("echo partial; exit 4", "exited with status 4"),
        ("true", "printed nothing"),
        ("printf '\\n'", "printed nothing"),
        ("no-such-program-here", "exited with status 127"),
    ] {
        let out = env
            .cmd()
            .args(["rotate", "k", "--generate", generate])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{generate}: {}",
            stderr_of(&out)
        );
        assert!(
            stderr_of(&out).contains(&format!(
                "error: the --generate command {outcome}; k keeps its old value"
            )),
            "{generate}: {}",
            stderr_of(&out)
        );
        assert_eq!(env.snapshot(), before, "{generate}");
    }
    // Generated, then rejected by --verify: still the old value.
    env.cmd()
        .args([
            "rotate",
            "k",
            "--generate",
            "echo generated",
            "--verify",
            "false",
        ])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "--verify command exited with status 1",
        ));
    assert_eq!(env.snapshot(), before);
    // One trailing newline is stripped, no more.
    env.cmd()
        .args(["rotate", "k", "--generate", "printf 'gen\\n\\n'"])
        .assert()
        .success();
    assert_eq!(env.get("k"), b"gen\n");
    env.cmd()
        .args([
            "rotate",
            "k",
            "--generate",
            "echo generated",
            "--verify",
            "test \"$K\" = generated",
        ])
        .assert()
        .success();
    assert_eq!(env.get("k"), b"generated");
    assert_eq!(show(&env, "k")["history"].as_array().unwrap().len(), 3);
}

#[test]
fn due_check_exits_3_only_when_something_is_overdue() {
    let env = TestEnv::init();
    env.cmd()
        .args(["due", "--check"])
        .assert()
        .code(0)
        .stdout("")
        .stderr("nothing is overdue or due within 14d\n");
    let t = now();
    add(&env, "fine", &[], "v");
    add(&env, "soon", &["--due", &plus(t, 3 * DAY).to_string()], "v");
    let out = env.cmd().args(["due", "--check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("soon") && !stdout_of(&out).contains("fine"));
    add(
        &env,
        "late",
        &["--rotated-at", &plus(t, -100 * DAY).to_string()],
        "v",
    );
    add(
        &env,
        "later",
        &["--rotated-at", &plus(t, -95 * DAY).to_string()],
        "v",
    );
    let out = env.cmd().args(["due", "--check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    let rows: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(rows, ["late", "later", "soon"]);
    assert_eq!(
        stderr_of(&out).lines().next().unwrap(),
        "error: 2 credentials are overdue for rotation: late (due 10d ago), later (due 5d ago)"
    );
    // Without --check, the same listing succeeds.
    env.cmd().arg("due").assert().code(0);
    let out = env
        .cmd()
        .args(["due", "--json", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let due = json(&out);
    assert_eq!(due["verified"], true);
    assert_eq!(due["overdue"], 2);
    assert_eq!(due["due_soon"], 1);
    let first = &due["credentials"][0];
    for field in [
        "name",
        "env",
        "backend",
        "kind",
        "created_at",
        "rotated_at",
        "rotate_every",
        "due_at",
        "status",
    ] {
        assert!(
            first.get(field).is_some(),
            "due --json lacks {field}: {first}"
        );
    }
    assert_eq!(first["name"], "late");
    assert_eq!(first["status"], "overdue");
    assert_eq!(ts(&first["due_at"]), plus(t, -10 * DAY));

    // A CI runner without the identity still gets the gate (unverified, and says so).
    fs::remove_file(env.identity_path()).unwrap();
    let out = env
        .cmd()
        .args(["due", "--check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert_eq!(json(&out)["verified"], false);
    assert!(stderr_of(&out).contains("integrity not verified"));
}

#[test]
fn exec_warns_about_overdue_credentials_and_deny_overdue_refuses() {
    let env = TestEnv::init();
    add(
        &env,
        "stale-key",
        &["--rotated-at", &plus(now(), -93 * DAY).to_string()],
        "stale-secret",
    );
    add(&env, "fresh-key", &[], "fresh-secret");
    let out = env
        .cmd()
        .args(["exec", "--", "sh", "-c", "echo \"ran $FRESH_KEY\""])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "ran fresh-secret\n");
    let stderr = stderr_of(&out);
    let warning = stderr.lines().collect::<Vec<_>>();
    assert_eq!(warning.len(), 1, "{stderr}");
    assert!(warning[0].starts_with("warning: stale-key is overdue for rotation (due "));
    assert!(warning[0].ends_with(", 3d ago)"), "{stderr}");
    assert!(!stderr.contains("secret"));
    // Only the injected credentials count.
    let out = env
        .cmd()
        .args(["exec", "--only", "fresh-key", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr_of(&out), "");

    let marker = env.dir.path().join("started");
    let touch = format!("touch {}", marker.display());
    let out = env
        .cmd()
        .args(["exec", "--deny-overdue", "--", "sh", "-c", &touch])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(!marker.exists(), "the program must not start");
    assert_eq!(
        stderr_of(&out).lines().next().unwrap(),
        "error: not starting sh: 1 credential is overdue for rotation: stale-key (due 3d ago)"
    );
    env.cmd()
        .args([
            "exec",
            "--deny-overdue",
            "--only",
            "fresh-key",
            "--",
            "sh",
            "-c",
            &touch,
        ])
        .assert()
        .code(0);
    assert!(marker.exists());
}

fn raw_rotate(env: &TestEnv) -> Command {
    let mut cmd = Command::new(TestEnv::bin());
    cmd.args(["rotate", "k"])
        .env_clear()
        .env("HOME", &env.home)
        .env("AGENTCRED_STORE", &env.store)
        .env("CI", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

#[test]
fn sigkill_during_rotate_leaves_the_old_or_the_new_value() {
    let env = TestEnv::init();
    env.add("k", b"value-0");
    let mut previous = b"value-0".to_vec();
    let mut seen_new = 0;
    let mut mid_write = 0;
    // Kill times are steered towards the write, so that some kills land in it (proved by
    // what they leave behind) however fast or loaded the machine is.
    let mut timer = common::KillTimer::new(5_000);
    let mut round = 0u64;
    while round < 50 || (mid_write < 3 && round < 400) {
        round += 1;
        let new_value = format!("value-{round}");
        let before = common::mid_write_leftovers(&env.store);
        let mut child = raw_rotate(&env).spawn().unwrap();
        {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(new_value.as_bytes())
                .unwrap();
        }
        timer.wait();
        let _ = child.kill();
        let _ = child.wait();
        let cut_short = common::new_leftovers(&before, &common::mid_write_leftovers(&env.store));
        let value = env.get("k");
        assert!(
            value == previous || value == new_value.as_bytes(),
            "round {round}: got {:?}",
            String::from_utf8_lossy(&value)
        );
        let completed = value == new_value.as_bytes();
        if completed {
            seen_new += 1;
            let shown = show(&env, "k");
            assert_eq!(
                shown["history"].as_array().unwrap().last().unwrap()["action"],
                "rotated"
            );
        }
        if cut_short {
            mid_write += 1;
        }
        timer.steer(completed, cut_short);
        previous = value;
        if round.is_multiple_of(10) {
            // Still writable, and nothing left behind but the secret files.
            env.add(&format!("extra-{round}"), b"x");
            let leftovers: Vec<_> = fs::read_dir(env.store.join("secrets"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| !n.ends_with(".age"))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
    }
    eprintln!(
        "{round} rounds: {seen_new} rotations completed before the kill, {mid_write} killed mid-rotation"
    );
    assert!(seen_new < round, "some kills landed before the commit");
    assert!(
        mid_write > 0,
        "no kill landed mid-rotation (no pending or temp file seen)"
    );
    assert!(Path::new(&env.secret_file("k")).exists());
}
