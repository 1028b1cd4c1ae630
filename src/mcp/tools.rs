//! The three tools of `agentcred mcp`, none of which can hand a value to the model:
//!
//! - `list_credentials`: names, variables, rotation status, upstream hosts.
//! - `http_request`: one request through the credential's broker route; the response is
//!   scrubbed of the value (and its encoded forms) and capped.
//! - `run`: a command the agent's profile declares (`agent command add`), run with the
//!   agent's credentials, its output masked and capped.
//!
//! The store is read afresh for every call, so a revoked credential or a removed command
//! stops working at once. Every call is one audit event (tool, agent, credential, host,
//! path or command, and the decision), written before anything leaves; a refusal is
//! audited too. Refusals name what was refused, never a value: a value is only ever
//! compared with what the model sent, never echoed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretSlice};
use serde_json::{Map, Value, json};

use super::upstream::{self, Request};
use super::{Handler, Outcome, Tool, run};
use crate::audit::{self, Draft};
use crate::crypto::identity::Identity;
use crate::error::Error;
use crate::exec::filecred::{self, FileSet};
use crate::exec::program;
use crate::exec::{self, Injection};
use crate::manifest::{Agent, Entry};
use crate::mask::{self, Patterns, Piece, Redactor};
use crate::model::credential::{AgentName, CredentialName, Kind};
use crate::model::rotation;
use crate::store::Store;
use crate::util::output::escape;

const LIST: &str = "list_credentials";
const HTTP: &str = "http_request";
const RUN: &str = "run";

/// Methods `http_request` sends, and those that change nothing.
const METHODS: &[&str] = &["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"];

/// Request headers the model may not set: the connection's own, and those that carry
/// credentials (the route sets its own).
const REFUSED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
];

/// What the model sees where a value was.
const MASK_PREFIX: &str = "<agentcred:";

/// The audit outcome of a refusal, and what the model is told.
#[derive(Debug)]
struct Refusal {
    outcome: &'static str,
    message: String,
}

impl Refusal {
    fn new(outcome: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            outcome,
            message: message.into(),
        }
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal {
            outcome: audit::outcome(e.exit()),
            message: e.to_string(),
        }
    }
}

/// The tools, over one store and one (optional) agent.
pub struct Tools<'a> {
    pub store_dir: PathBuf,
    pub identity: &'a Identity,
    pub agent: Option<AgentName>,
}

/// What the agent may use right now.
struct Profile {
    agent: Option<Agent>,
    /// The allowed credentials that exist, by name.
    credentials: BTreeMap<CredentialName, Entry>,
}

impl Tools<'_> {
    fn profile(&self, store: &Store) -> Result<Profile, Error> {
        let reader = store.reader(self.identity)?;
        let manifest = reader.manifest()?;
        let agent = match &self.agent {
            Some(name) => {
                Some(
                    manifest
                        .agent(name)
                        .cloned()
                        .ok_or_else(|| Error::AgentNotFound {
                            name: name.to_string(),
                        })?,
                )
            }
            None => None,
        };
        let credentials = manifest
            .credentials
            .into_iter()
            .filter(|(name, _)| agent.as_ref().is_none_or(|a| a.allow.contains(name)))
            .filter_map(|(name, entry)| Some((CredentialName::parse(&name).ok()?, entry)))
            .collect();
        Ok(Profile { agent, credentials })
    }

    fn draft(&self, action: &'static str) -> Draft {
        Draft {
            action,
            agent: self.agent.as_ref().map(ToString::to_string),
            ..Draft::default()
        }
    }

    /// Write one event. A log that cannot be written stops the call.
    fn audit(&self, store: &Store, draft: &Draft, outcome: &str) -> Result<(), Refusal> {
        audit::append(store.root(), draft, outcome)
            .map(|_| ())
            .map_err(|e| Refusal::new("error", format!("not done: {e}")))
    }

    fn log(&self, tool: &str, what: &str, outcome: &str) {
        eprintln!("agentcred mcp: {tool} {what}: {outcome}");
    }

    fn list(&self) -> Result<Value, Refusal> {
        let store = Store::open(&self.store_dir, crate::util::output::say_on_stderr())?;
        let profile = self.profile(&store)?;
        let reader = store.reader(self.identity)?;
        let defaults = reader.defaults()?;
        drop(reader);
        let now = rotation::now();
        let mut draft = self.draft("mcp-list-credentials");
        draft.credentials = profile
            .credentials
            .keys()
            .map(ToString::to_string)
            .collect();
        self.audit(&store, &draft, "ok")?;
        let credentials: Vec<Value> = profile
            .credentials
            .iter()
            .map(|(name, entry)| {
                let due = entry.due_at(&defaults);
                json!({
                    "name": name.as_str(),
                    "variable": entry.env.as_str(),
                    "kind": entry.kind.as_str(),
                    "status": rotation::status(due, now, defaults.due_soon_window).as_str(),
                    "due": due.map(crate::util::output::rfc3339),
                    "upstream_host": upstream::host(entry),
                    "description": entry.description,
                })
            })
            .collect();
        Ok(json!({ "agent": self.agent.as_ref().map(|a| a.as_str()), "credentials": credentials }))
    }

    fn http(&self, arguments: &Map<String, Value>) -> Result<Value, Refusal> {
        let store = Store::open(&self.store_dir, crate::util::output::say_on_stderr())?;
        let mut draft = self.draft("mcp-http-request");
        let result = self.http_checked(&store, arguments, &mut draft);
        if let Err(refusal) = &result {
            // A refusal is audited with what was known of the request (status 0: not sent).
            if let Some(request) = &mut draft.request {
                request.decision = refusal.outcome.into();
            }
            let _ = self.audit(&store, &draft, refusal.outcome);
        }
        result
    }

    fn http_checked(
        &self,
        store: &Store,
        arguments: &Map<String, Value>,
        draft: &mut Draft,
    ) -> Result<Value, Refusal> {
        let credential = string_arg(arguments, "credential")?;
        draft.credentials = [shown(&credential)].into();
        let name = CredentialName::parse(&credential)?;
        draft.credentials = [name.to_string()].into();
        let path = string_arg(arguments, "path")?;
        let method = string_arg(arguments, "method")?.to_ascii_uppercase();
        draft.request = Some(crate::audit::Request {
            method: shown(&method),
            host: String::new(),
            path: shown(path.split('?').next().unwrap_or_default()),
            status: 0,
            decision: String::new(),
        });
        let profile = self.profile(store)?;
        let entry = profile
            .credentials
            .get(&name)
            .cloned()
            .ok_or_else(|| not_allowed(self.agent.as_ref(), &name))?;
        let Some(host) = upstream::host(&entry) else {
            return Err(Refusal::new(
                "denied",
                format!(
                    "credential {name} has no upstream route, so no request can be sent with it"
                ),
            ));
        };
        if let Some(request) = &mut draft.request {
            request.host = host;
        }
        if !METHODS.contains(&method.as_str()) {
            return Err(Refusal::new(
                "usage",
                format!("method must be one of {}", METHODS.join(", ")),
            ));
        }
        check_path(&path)?;
        let query = string_map(arguments, "query")?;
        let headers = string_map(arguments, "headers")?;
        let credential_header = upstream::credential_header(&entry);
        for (header, value) in &headers {
            let lower = header.to_ascii_lowercase();
            if !is_token(header) || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(Refusal::new("usage", "a header name or value is malformed"));
            }
            if REFUSED_HEADERS.contains(&lower.as_str())
                || lower.starts_with("proxy-")
                || credential_header.as_deref() == Some(lower.as_str())
            {
                return Err(Refusal::new(
                    "blocked",
                    format!(
                        "header {} is set by agentcred or the connection, not by the caller",
                        escape(header)
                    ),
                ));
            }
        }
        let body = match arguments.get("body") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(body)) => body.clone().into_bytes(),
            Some(_) => return Err(Refusal::new("usage", "body must be a string")),
        };
        if body.len() > upstream::MAX_REQUEST_BODY {
            return Err(Refusal::new("usage", "the body is larger than 1 MiB"));
        }
        let request = Request {
            method,
            path,
            query,
            headers,
            body,
        };
        let sent = request_bytes(&request);
        if sent
            .iter()
            .any(|part| contains(part, MASK_PREFIX.as_bytes()))
        {
            return Err(Refusal::new(
                "blocked",
                "the request carries a masked placeholder (<agentcred:...>); agentcred never substitutes values into requests",
            ));
        }
        let reader = store.reader(self.identity)?;
        let defaults = reader.defaults()?;
        let deny = profile.agent.as_ref().is_some_and(|a| a.deny_overdue);
        let warnings = exec::overdue_check([(&name, &entry)], &defaults, rotation::now(), deny)?;
        for warning in warnings {
            eprintln!("{warning}");
        }
        let value = reader.value(&name, &entry)?;
        let tokens = crate::oauth::StoreAccess {
            root: store.root().to_path_buf(),
            identity: std::sync::Arc::new(self.identity.clone()),
            store_id: reader.store_id().to_owned(),
        };
        drop(reader);
        let patterns = scrubber(&name, &crate::oauth::secrets_of(&entry, &value))?;
        if sent.iter().any(|part| found_in(&patterns, part)) {
            return Err(Refusal::new(
                "blocked",
                format!("the request carries the value of {name}; agentcred sets it itself"),
            ));
        }
        // The broker's event for the request (its status and decision) is this call's.
        let mut sent = draft.clone();
        sent.request = None;
        let response = upstream::send(&tokens, &sent, &name, &entry, &value, &request)
            .map_err(|e| Refusal::new("error", format!("the request failed: {e}")))?;
        drop(value);
        let body = scrub(&patterns, &response.body);
        let mut out = json!({
            "status": response.status,
            "content_type": response.content_type.as_deref().map(|t| scrub_text(&patterns, t)),
            "body_truncated": response.truncated,
        });
        if let Some(location) = &response.location {
            out["location"] = json!(scrub_text(&patterns, location));
        }
        match String::from_utf8(body) {
            Ok(text) => out["body"] = json!(text),
            Err(e) => {
                use base64::Engine;
                out["body_base64"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(e.as_bytes()));
            }
        }
        Ok(out)
    }

    fn run(&self, arguments: &Map<String, Value>) -> Result<Value, Refusal> {
        let store = Store::open(&self.store_dir, crate::util::output::say_on_stderr())?;
        let mut draft = self.draft("mcp-run");
        let result = self.run_checked(&store, arguments, &mut draft);
        if let Err(refusal) = &result {
            let _ = self.audit(&store, &draft, refusal.outcome);
        }
        result
    }

    fn run_checked(
        &self,
        store: &Store,
        arguments: &Map<String, Value>,
        draft: &mut Draft,
    ) -> Result<Value, Refusal> {
        let command = string_arg(arguments, "command")?;
        draft.program = Some(shown(&command));
        let Some(agent_name) = &self.agent else {
            return Err(Refusal::new(
                "denied",
                "no agent: commands are declared per agent (`agentcred mcp --agent NAME`)",
            ));
        };
        let profile = self.profile(store)?;
        let agent = profile.agent.as_ref().ok_or_else(|| Error::AgentNotFound {
            name: agent_name.to_string(),
        })?;
        let declared = agent.commands.get(&command).ok_or_else(|| {
            Refusal::new(
                "denied",
                format!(
                    "agent {agent_name} declares no command {}",
                    escape(&shown(&command))
                ),
            )
        })?;
        let extra: Vec<String> = match arguments.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<_>>()
                .ok_or_else(|| Refusal::new("usage", "args must be a list of strings"))?,
            Some(_) => return Err(Refusal::new("usage", "args must be a list of strings")),
        };
        if !extra.is_empty() && !declared.extra_args {
            return Err(Refusal::new(
                "denied",
                format!("command {command} takes no arguments beyond its declared ones"),
            ));
        }
        if extra.iter().any(|a| a.contains('\0')) {
            return Err(Refusal::new("usage", "an argument contains a NUL byte"));
        }
        // Hashed through the descriptor it then runs through (as exec does), so a file
        // renamed over the path after the check is not what runs.
        let opened = program::OpenedProgram::open(declared.program.as_ref())?;
        if !crate::crypto::integrity::tags_equal(&opened.sha256, &declared.program_sha256) {
            return Err(Error::ProgramChanged {
                agent: agent_name.to_string(),
                program: escape(&declared.program),
            }
            .into());
        }
        draft.credentials = profile
            .credentials
            .keys()
            .map(ToString::to_string)
            .collect();
        let reader = store.reader(self.identity)?;
        let defaults = reader.defaults()?;
        let warnings = exec::overdue_check(
            profile.credentials.iter(),
            &defaults,
            rotation::now(),
            agent.deny_overdue,
        )?;
        for warning in warnings {
            eprintln!("{warning}");
        }
        let mut values = Vec::with_capacity(profile.credentials.len());
        for (name, entry) in &profile.credentials {
            values.push((name.clone(), entry.clone(), reader.value(name, entry)?));
        }
        let store_id = reader.store_id().to_owned();
        drop(reader);
        let values = crate::oauth::access_tokens(store, self.identity, &store_id, values, false)?;
        let mut injections = Vec::with_capacity(values.len());
        for (name, entry, value) in values {
            let injection = Injection {
                value,
                name,
                env: entry.env,
                kind: entry.kind,
            };
            exec::check_injection(&injection)?;
            injections.push(injection);
        }
        let built = Patterns::build(
            injections
                .iter()
                .map(|i| (i.name.to_string(), i.value.expose_secret())),
        )?;
        if let Some(short) = built.too_short.first() {
            return Err(Refusal::new(
                "denied",
                format!(
                    "the value of {short} is shorter than {} bytes, too short to be masked reliably in the output; not running {command}",
                    mask::MIN_LEN
                ),
            ));
        }
        // No credentials at all: nothing to mask, but masking stays on.
        let patterns = match built.patterns {
            Some(patterns) => patterns,
            None => empty_patterns()?,
        };
        let launch = Launch {
            declared,
            opened: &opened,
            command: &command,
            extra,
            agent,
        };
        self.spawn(store, draft, launch, injections, &patterns)
    }

    fn spawn(
        &self,
        store: &Store,
        draft: &Draft,
        launch: Launch<'_>,
        injections: Vec<Injection>,
        patterns: &Patterns,
    ) -> Result<Value, Refusal> {
        let Launch {
            declared,
            opened,
            command,
            extra,
            agent,
        } = launch;
        let mut files = FileSet::write(
            &filecred::base_dir(),
            injections
                .iter()
                .filter(|i| i.kind == Kind::File)
                .map(|i| (&i.name, i.value.expose_secret())),
        )?;
        let mut env = exec::child_env(std::env::vars_os(), agent.clean_env, &injections, &files);
        drop(injections);
        crate::policy::set_agent_var(&mut env, self.agent.as_ref());
        let args: Vec<OsString> = declared
            .args
            .iter()
            .chain(extra.iter())
            .map(OsString::from)
            .collect();
        self.audit(store, draft, "ok")?;
        let program = OsString::from(&declared.program);
        let argv0 = program::program_basename(program.as_ref())
            .map_or_else(|| program.clone(), OsString::from);
        let outcome = run::run(
            opened.run_path().as_os_str(),
            &argv0,
            &args,
            env,
            patterns,
            run::TIMEOUT,
        );
        if let Err(e) = files.remove() {
            eprintln!("warning: cannot remove file credentials: {e}");
        }
        let captured = outcome?;
        Ok(json!({
            "command": command,
            "exit_code": captured.exit_code,
            "signal": captured.signal,
            "timed_out": captured.timed_out,
            "stdout": captured.stdout,
            "stderr": captured.stderr,
            "output_truncated": captured.truncated,
        }))
    }
}

/// The checked command `run` starts: its declaration, the open file that was hashed, and
/// the arguments the agent added.
struct Launch<'a> {
    declared: &'a crate::manifest::AgentCommand,
    opened: &'a program::OpenedProgram,
    command: &'a str,
    extra: Vec<String>,
    agent: &'a Agent,
}

impl Handler for Tools<'_> {
    fn tools(&mut self) -> Vec<Tool> {
        let mut tools = vec![Tool {
            name: LIST,
            title: "List credentials",
            description: "The credentials this agent may use: name, environment variable, kind, rotation status (ok, due-soon, overdue, never), due date and upstream host. Never their values.".into(),
            input_schema: json!({ "type": "object", "properties": {}, "additionalProperties": false }),
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: false,
        }];
        let profile = match Store::open(&self.store_dir, crate::util::output::say_on_stderr())
            .and_then(|store| self.profile(&store))
        {
            Ok(profile) => profile,
            Err(e) => {
                eprintln!("agentcred mcp: tools/list: {e}");
                return tools;
            }
        };
        let routed: Vec<&str> = profile
            .credentials
            .iter()
            .filter(|(_, entry)| upstream::host(entry).is_some())
            .map(|(name, _)| name.as_str())
            .collect();
        if !routed.is_empty() {
            tools.push(Tool {
                name: HTTP,
                title: "HTTP request with a credential",
                description: "Send one HTTP request to a credential's API. agentcred adds the credential itself; you never see or send it. `path` is relative to the API's base URL. Redirects are not followed. The response body is capped at 64 KiB; any credential value in it is overwritten (<agentcred:scrubbed>***).".into(),
                input_schema: json!({
                    "type": "object",
                    "properties": {
                        "credential": { "type": "string", "enum": routed },
                        "method": { "type": "string", "enum": METHODS },
                        "path": { "type": "string", "description": "absolute path under the API's base URL, e.g. /v1/models" },
                        "query": { "type": "object", "additionalProperties": { "type": "string" } },
                        "headers": { "type": "object", "additionalProperties": { "type": "string" } },
                        "body": { "type": "string" }
                    },
                    "required": ["credential", "method", "path"],
                    "additionalProperties": false
                }),
                read_only: false,
                destructive: true,
                idempotent: false,
                open_world: true,
            });
        }
        if let Some(agent) = profile.agent.as_ref().filter(|a| !a.commands.is_empty()) {
            let names: Vec<&str> = agent.commands.keys().map(String::as_str).collect();
            let listing: Vec<String> = agent
                .commands
                .iter()
                .map(|(name, c)| {
                    format!(
                        "- {name}{}{}: {}",
                        if c.read_only { " (read-only)" } else { "" },
                        if c.extra_args { " (takes args)" } else { "" },
                        c.description.as_deref().unwrap_or("no description")
                    )
                })
                .collect();
            let all_read_only = agent.commands.values().all(|c| c.read_only);
            tools.push(Tool {
                name: RUN,
                title: "Run a declared command",
                description: format!(
                    "Run one of the commands declared for this agent, with its credentials in the environment. Output is masked (credential values become <agentcred:NAME>) and capped at 64 KiB per stream; the command is killed after {} s. Commands:\n{}",
                    run::TIMEOUT.as_secs(),
                    listing.join("\n")
                ),
                input_schema: json!({
                    "type": "object",
                    "properties": {
                        "command": { "type": "string", "enum": names },
                        "args": { "type": "array", "items": { "type": "string" }, "description": "extra arguments, only for commands that take them" }
                    },
                    "required": ["command"],
                    "additionalProperties": false
                }),
                read_only: all_read_only,
                destructive: !all_read_only,
                idempotent: false,
                open_world: true,
            });
        }
        tools
    }

    fn call(&mut self, name: &str, arguments: &Map<String, Value>) -> Option<Outcome> {
        let (result, what) = match name {
            LIST => (self.list(), String::new()),
            HTTP => (
                self.http(arguments),
                arguments
                    .get("credential")
                    .and_then(Value::as_str)
                    .map(shown)
                    .unwrap_or_default(),
            ),
            RUN => (
                self.run(arguments),
                arguments
                    .get("command")
                    .and_then(Value::as_str)
                    .map(shown)
                    .unwrap_or_default(),
            ),
            _ => return None,
        };
        Some(match result {
            Ok(value) => {
                self.log(name, &escape(&what), "ok");
                Outcome::Done(value)
            }
            Err(refusal) => {
                self.log(name, &escape(&what), refusal.outcome);
                Outcome::Refused(format!(
                    "refused ({}): {}",
                    refusal.outcome, refusal.message
                ))
            }
        })
    }

    fn instructions(&self) -> String {
        "agentcred holds API credentials for you without ever showing them. Call list_credentials to see which you may use; http_request sends a request with one of them to its API; run starts a command declared for you with credentials in its environment. Values never appear in any result: where one would, you see <agentcred:NAME>. Do not try to obtain or print credential values.".into()
    }
}

fn not_allowed(agent: Option<&AgentName>, name: &CredentialName) -> Refusal {
    match agent {
        Some(agent) => Error::NotAllowed {
            agent: agent.to_string(),
            name: name.to_string(),
        }
        .into(),
        None => Error::CredentialNotFound {
            name: name.to_string(),
        }
        .into(),
    }
}

/// Text from the model, cut short and made printable, for logs and audit fields.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(128).collect();
    escape(&cut)
}

fn string_arg(arguments: &Map<String, Value>, key: &str) -> Result<String, Refusal> {
    arguments
        .get(key)
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| Refusal::new("usage", format!("{key} must be a string")))
}

/// An optional object of strings (numbers and booleans are written as JSON writes them).
fn string_map(arguments: &Map<String, Value>, key: &str) -> Result<Vec<(String, String)>, Refusal> {
    match arguments.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
                _ => Err(Refusal::new(
                    "usage",
                    format!("{key} values must be strings"),
                )),
            })
            .collect(),
        Some(_) => Err(Refusal::new("usage", format!("{key} must be an object"))),
    }
}

/// A path stays under the route: absolute, no `.`/`..` segment (also percent-encoded), no
/// encoded slash or backslash, no authority, query or fragment, no control characters.
fn check_path(path: &str) -> Result<(), Refusal> {
    let outside = || {
        Refusal::new(
            "blocked",
            "the path must stay under the API's base URL (an absolute path without . or .. segments, query or fragment)",
        )
    };
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(outside());
    }
    if path
        .chars()
        .any(|c| c.is_control() || matches!(c, '\\' | '?' | '#' | ' '))
    {
        return Err(outside());
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains("%00") {
        return Err(outside());
    }
    for segment in lower.split('/') {
        let decoded = segment.replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Err(outside());
        }
    }
    Ok(())
}

/// An HTTP header name (RFC 9110 token).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Every part of a request the model wrote.
fn request_bytes(request: &Request) -> Vec<Vec<u8>> {
    let mut parts = vec![request.path.clone().into_bytes(), request.body.clone()];
    for (key, value) in request.query.iter().chain(&request.headers) {
        parts.push(key.clone().into_bytes());
        parts.push(value.clone().into_bytes());
    }
    parts
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// The masking automaton of one credential's value. A value too short to be looked for
/// cannot be scrubbed, so it is not used.
/// Patterns for a credential's secrets: its value and, for a login record, the refresh
/// token and client secret inside it (`oauth::secrets_of`).
fn scrubber(name: &CredentialName, secrets: &[SecretSlice<u8>]) -> Result<Patterns, Refusal> {
    Patterns::build(secrets.iter().map(|s| (name.to_string(), s.expose_secret())))?
        .patterns
        .ok_or_else(|| {
            Refusal::new(
                "denied",
                format!(
                    "the value of {name} is shorter than {} bytes, too short to be scrubbed from responses reliably",
                    mask::MIN_LEN
                ),
            )
        })
}

/// Patterns that match nothing a program prints (for a run without credentials).
fn empty_patterns() -> Result<Patterns, Refusal> {
    let mut random = [0u8; 32];
    getrandom::getrandom(&mut random)
        .map_err(|_| Refusal::new("error", "cannot get random bytes"))?;
    Patterns::build([("none".to_string(), &random[..])])?
        .patterns
        .ok_or_else(|| Refusal::new("error", "cannot build the masking automaton"))
}

fn found_in(patterns: &Patterns, data: &[u8]) -> bool {
    let mut found = false;
    let mut redactor = Redactor::new(patterns);
    let mut note = |piece: Piece<'_>| -> Result<(), ()> {
        if matches!(piece, Piece::Found { .. }) {
            found = true;
        }
        Ok(())
    };
    let _ = redactor.feed(data, &mut note);
    let _ = redactor.finish(&mut note);
    found
}

/// `data` with every form of the value replaced by `<agentcred:NAME>`.
fn scrub(patterns: &Patterns, data: &[u8]) -> Vec<u8> {
    let labels: Vec<Vec<u8>> = patterns
        .labels()
        .iter()
        .map(|l| format!("{MASK_PREFIX}{l}>").into_bytes())
        .collect();
    let mut out = Vec::with_capacity(data.len());
    let mut redactor = Redactor::new(patterns);
    let mut keep = |piece: Piece<'_>| -> Result<(), ()> {
        match piece {
            Piece::Text(text) => out.extend_from_slice(text),
            Piece::Found { label, .. } => out.extend_from_slice(&labels[label]),
        }
        Ok(())
    };
    let _ = redactor.feed(data, &mut keep);
    let _ = redactor.finish(&mut keep);
    out
}

fn scrub_text(patterns: &Patterns, text: &str) -> String {
    String::from_utf8_lossy(&scrub(patterns, text.as_bytes())).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_route() {
        for good in ["/", "/v1/models", "/v1/a.b/c..d", "/a%20b", "/%2E%2Eish"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in [
            "v1/models",
            "//evil.example/x",
            "/../x",
            "/a/./b",
            "/a/%2e%2E/b",
            "/a%2fb",
            "/a\\b",
            "/a?b=c",
            "/a#f",
            "/a\nb",
            "http://evil/",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scrubbing_replaces_every_form() {
        let name = CredentialName::parse("api-key").unwrap();
        let value = SecretSlice::from(b"sk-live-0123456789".to_vec());
        let patterns = scrubber(&name, &[value]).unwrap();
        let out = scrub(
            &patterns,
            b"a sk-live-0123456789 b c2stbGl2ZS0wMTIzNDU2Nzg5 c",
        );
        assert_eq!(out, b"a <agentcred:api-key> b <agentcred:api-key> c");
        assert!(found_in(&patterns, b"x=sk-live-0123456789"));
        assert!(!found_in(&patterns, b"sk-live-012345678"));
        let short = SecretSlice::from(b"short".to_vec());
        assert!(scrubber(&name, &[short]).is_err());
    }

    #[test]
    fn header_names_are_tokens() {
        assert!(is_token("X-Request-Id"));
        assert!(!is_token("Bad Header"));
        assert!(!is_token(""));
    }
}
