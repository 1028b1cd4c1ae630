//! exec's use case, callable without the parser: a [`Request`] in, an [`ExecPlan`] out.
//! Which agent and credentials (README, "Agents: least privilege per program"), the
//! program checked against the agent's pin, duplicate variables and overdue credentials
//! refused, values read and OAuth tokens minted, in that order. `cli/exec.rs` only wires
//! flags to a request; `exec --broker`, `exec --sandbox` and the MCP server build
//! requests too.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::audit::Recorder;
use crate::crypto::identity::Identity;
use crate::error::{Error, Result};
use crate::exec::program::{check_program, program_basename, resolve_program};
use crate::exec::{self, ExecPlan, Injection};
use crate::model::credential::{CredentialName, Kind};
use crate::oauth;
use crate::policy::{self, ENV_AGENT, ExecPolicy, Names};
use crate::store::Store;
use crate::util::output::escape;

/// What `agentcred exec` is asked to do.
#[derive(Debug, Default)]
pub struct Request {
    /// The program and its arguments.
    pub command: Vec<OsString>,
    /// `--only`: these credentials (comma-separated or repeated).
    pub only: Vec<String>,
    /// `--agent`.
    pub agent: Option<String>,
    pub clean_env: bool,
    pub deny_overdue: bool,
    pub mask: bool,
    /// `-v`: say which rule chose the agent and what is injected.
    pub verbose: bool,
    /// `exec --broker`: credentials with an upstream reach the program as a placeholder
    /// and a local proxy's URL (an agent's policy may ask too).
    pub broker: bool,
    /// With `broker`: these credentials are injected as usual.
    pub raw: Vec<String>,
    /// `exec --sandbox`: run the program in the sandbox (an agent's policy may ask too).
    pub sandbox: bool,
}

/// What the use case needs from its caller: the store and identity (opened when first
/// needed, so errors come in the documented order), the command's audit event, and
/// where lines for people go (warnings, `-v` notes): the library prints nothing itself.
pub struct Deps<'a> {
    pub open_store: &'a dyn Fn() -> Result<Store>,
    pub identity: &'a dyn Fn() -> Result<&'a Identity>,
    pub audit: &'a Recorder,
    pub say: &'a mut dyn FnMut(&str),
}

/// Turn a request into a plan: everything `exec` decides before the program runs. The
/// value cache write comes back beside it, for the caller to make once nothing else can
/// fail (after the audit line): a refused OAuth refresh leaves the store as it was.
pub fn prepare(
    request: Request,
    deps: Deps<'_>,
) -> anyhow::Result<(ExecPlan, crate::store::CacheWrite)> {
    let Deps {
        open_store,
        identity,
        audit,
        say,
    } = deps;
    let (program, args) = request
        .command
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no command given"))?;
    // A mistyped flag lands here as the program; say so instead of "command not found".
    if program.as_encoded_bytes().starts_with(b"-") {
        let typed = program.to_string_lossy();
        return Err(Error::UnknownExecOption {
            option: escape(typed.split('=').next().unwrap_or_default()),
            guess: String::new(),
        }
        .into());
    }
    audit.note(|d| {
        d.program = Some(
            program_basename(program)
                .map_or_else(|| program.to_string_lossy().into_owned(), String::from),
        );
    });
    let only = CredentialName::parse_list(&request.only)?;
    // `--only ""` or `--only ,` names nothing: never "everything".
    if !request.only.is_empty() && only.is_empty() {
        return Err(Error::Usage(
            "--only names no credential; name at least one (--only NAME,...)".into(),
        )
        .into());
    }
    audit.note(|d| d.credentials = only.iter().map(CredentialName::as_str).collect());
    let store = open_store()?;
    let resolved = resolve_program(program, std::env::var_os("PATH").as_deref())?;
    let env_agent = std::env::var_os(ENV_AGENT).filter(|v| !v.is_empty());
    audit.note(|d| {
        d.agent = request
            .agent
            .clone()
            .or_else(|| env_agent.as_ref().map(|v| v.to_string_lossy().into_owned()));
    });
    // A rolled-back store can bring back a revoked grant: refused here, not warned.
    let reader = store.reader_for_exec(identity()?)?;
    let chosen = policy::choose_agent(
        request.agent.as_deref(),
        env_agent.as_deref(),
        program,
        args,
        |name| reader.agent(name),
    )?;
    if chosen.is_none() {
        let shown = escape(&program.to_string_lossy());
        if reader.defaults()?.require_agent {
            return Err(Error::AgentRequired { program: shown }.into());
        }
        if only.is_empty() && reader.has_agents() {
            say(&format!(
                "warning: no agent applies to {shown}, so it gets every credential (--agent NAME, or an agent named like the program or script, limits it; `agentcred config require-agent true` makes this an error)"
            ));
        }
    }
    audit.note(|d| d.agent = chosen.as_ref().map(|c| c.name.to_string()));
    let flags = ExecPolicy {
        clean_env: request.clean_env,
        deny_overdue: request.deny_overdue,
        sandbox: request.sandbox,
        broker: request.broker,
        ..ExecPolicy::default()
    };
    let selection = policy::select(only, chosen, flags)?;
    // Each credential with a slot for its value, filled once every check has passed: the
    // slot keeps an element the size of the (name, entry, value) that follows, so that
    // turning one into the other reuses the vector (10,000 entries are 2.7 MB). Every
    // credential: the vector the reader read them into.
    let mut selected: Vec<crate::store::Slot> = match &selection.names {
        Names::Every => reader.every_credential()?,
        Names::These(names) => names
            .iter()
            .map(|name| reader.entry(name).map(|entry| (name.clone(), entry, None)))
            .collect::<Result<_>>()?,
    };
    audit.note(|d| {
        d.credentials = selected.iter().map(|(n, _, _)| n.as_str()).collect();
    });
    // An agent's credentials go only to its pinned program: run the path checked.
    // Otherwise run the file found along PATH, as execvp would have.
    // A hash-pinned program runs through the descriptor that was hashed (`pinned`).
    let (run_path, pinned) = match &selection.agent {
        Some(chosen) => {
            let checked = check_program(chosen, &resolved, program)?;
            (checked.path, checked.opened)
        }
        None => (resolved.found, None),
    };
    let mut targets: BTreeMap<&str, &CredentialName> = BTreeMap::new();
    for (name, entry, _) in &selected {
        if let Some(other) = targets.insert(entry.env.as_str(), name) {
            return Err(Error::DuplicateEnv {
                first: other.to_string(),
                second: name.to_string(),
                env: entry.env.to_string(),
            }
            .into());
        }
    }
    drop(targets);
    let overdue = exec::overdue_check(
        selected.iter().map(|(name, entry, _)| (name, entry)),
        &reader.defaults()?,
        crate::model::rotation::now(),
        selection.policy.deny_overdue,
    )
    .map_err(|e| not_starting(e.into(), program))?;
    for warning in overdue {
        say(&warning);
    }
    // Checked before any value is decrypted: a system that cannot sandbox refuses early.
    let sandbox = if selection.policy.sandbox {
        let spec = crate::sandbox::Spec::for_store(store.root())
            .and_then(|spec| crate::sandbox::check(&spec).map(|mechanism| (spec, mechanism)))
            .and_then(|found| crate::sandbox::keep_undumpable().map(|()| found))
            .map_err(|e| {
                anyhow::Error::from(e).context(format!(
                    "not starting {}",
                    escape(&program.to_string_lossy())
                ))
            })?;
        if request.verbose {
            say(&format!("agentcred: sandbox: {}", spec.1));
        }
        Some(spec.0)
    } else {
        None
    };
    for (name, entry, slot) in &mut selected {
        *slot = Some(reader.value(name, entry)?);
    }
    let values: Vec<crate::oauth::Selected> = selected
        .into_iter()
        .filter_map(|(name, entry, value)| value.map(|value| (name, entry, value)))
        .collect();
    let store_id = reader.store_id().to_owned();
    let (cache_notes, cache_write) = reader.hand_back();
    let brokering = selection.policy.broker;
    if !brokering && !request.raw.is_empty() {
        return Err(Error::Usage(
            "--raw goes with --broker (or an agent whose policy brokers)".into(),
        )
        .into());
    }
    let (values, brokered) = if brokering {
        let raw = CredentialName::parse_list(&request.raw)?;
        let split = crate::broker::session::split(values, &raw)?;
        (split.raw, split.brokered)
    } else {
        (values, Vec::new())
    };
    let raw_names: Vec<CredentialName> = if brokering {
        values.iter().map(|(n, _, _)| n.clone()).collect()
    } else {
        Vec::new()
    };
    // oauth2 credentials hold a client secret; the program gets an access token instead.
    // Done with the store unlocked: a token request may take seconds.
    let values = oauth::access_tokens(&store, identity()?, &store_id, values, request.verbose)
        .map_err(|e| not_starting(e.into(), program))?;
    // In place: the values' vector becomes the injections' (a second vector of 10,000
    // would be 0.7 MB more at the peak), then gives back the room it no longer needs.
    let mut injections: Vec<Injection> = values
        .into_iter()
        .map(|(name, entry, value)| {
            let injection = Injection {
                value,
                name,
                env: entry.env,
                kind: entry.kind,
            };
            exec::check_injection(&injection).map(|()| injection)
        })
        .collect::<Result<_>>()?;
    injections.shrink_to_fit();
    if request.verbose {
        for note in &cache_notes {
            say(note);
        }
        say(&format!("agentcred: {}", selection.explain(program)));
        let names: Vec<String> = injections
            .iter()
            .map(|i| match i.kind {
                Kind::Secret => format!("{} as {}", i.name, i.env),
                Kind::Oauth2 => format!("{} as an access token in {}", i.name, i.env),
                Kind::File => format!("{} as a file in {}", i.name, i.env),
            })
            .map(
                |text| match raw_names.iter().any(|n| text.starts_with(&format!("{n} "))) {
                    true => format!("{text} (raw, not brokered)"),
                    false => text,
                },
            )
            .collect();
        say(&format!(
            "agentcred: injecting {}",
            if names.is_empty() {
                "nothing".into()
            } else {
                names.join(", ")
            }
        ));
    }
    let broker = if brokering {
        let tokens = oauth::StoreAccess {
            root: store.root().to_path_buf(),
            identity: std::sync::Arc::new(identity()?.clone()),
            store_id: store_id.clone(),
        };
        let session = crate::broker::session::Session::start(
            brokered,
            Some(broker_audit(&store, &selection, program)),
            Some(tokens),
        )?;
        if request.verbose {
            for line in &session.summary {
                say(&format!("agentcred: {line}"));
            }
        }
        Some(session)
    } else {
        None
    };
    // A sandboxed program cannot reach the keyring, so there is nothing to warn about.
    if sandbox.is_none() && identity()?.unlocked_in_session() {
        say(&format!(
            "warning: your identity is unlocked in this login session's kernel keyring (agentcred unlock), where {} can read it; run `agentcred lock` before running programs you do not trust",
            escape(&program.to_string_lossy())
        ));
    }
    let plan = ExecPlan {
        program: run_path.into_os_string(),
        argv0: program.clone(),
        args: args.to_vec(),
        injections,
        clean_env: selection.policy.clean_env,
        mask: request.mask || selection.policy.mask,
        agent: selection.agent.map(|chosen| chosen.name),
        broker,
        sandbox,
        pinned,
    };
    Ok((plan, cache_write))
}

/// Say that the program was not started, and why.
fn not_starting(e: anyhow::Error, program: &std::ffi::OsStr) -> anyhow::Error {
    e.context(format!(
        "not starting {}",
        escape(&program.to_string_lossy())
    ))
}

/// The broker's audit callback: one `broker` event per request, with the agent and the
/// program of this exec; its outcome is the decision (`brokered` or `blocked`).
fn broker_audit(
    store: &Store,
    selection: &policy::Selection,
    program: &std::ffi::OsStr,
) -> crate::broker::AuditFn {
    let root = store.root().to_path_buf();
    let agent = selection
        .agent
        .as_ref()
        .map(|chosen| chosen.name.to_string());
    let program = program_basename(program).map(String::from);
    Box::new(move |event: crate::broker::AuditEvent| {
        let draft = crate::audit::Draft {
            action: "broker",
            agent: agent.clone(),
            credentials: [event.credential].into(),
            program: program.clone(),
            request: Some(crate::audit::Request {
                method: event.method,
                host: event.host,
                path: event.path,
                status: event.status,
                decision: event.decision.as_str().into(),
            }),
        };
        // The broker's thread has no caller to hand a warning to.
        if let Err(e) = crate::audit::append(&root, &draft, event.decision.as_str()) {
            eprintln!("warning: a brokered request was not audited: {e}");
        }
    })
}
