//! Agents at `exec`: which credentials a program gets, and why (README, "Agents: least
//! privilege per program").
//!
//! Selection is kept here as plain functions over the manifest's agents, so that every rule
//! of the precedence (`--only` > `--agent` > `AGENTCRED_AGENT` > an agent named like the
//! program > every credential) is unit-tested without a store, and `-v` can say which rule
//! decided. Program binding lives here too: an agent may pin the one executable its
//! credentials may go to, resolved the way `execvp` would resolve CMD.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::manifest::Agent;
use crate::model::credential::{AgentName, CredentialName};
use crate::util::output::escape;

use crate::util::fs::program_basename;

/// The variable that names the agent: read by `exec`, and set for the child it starts.
pub const ENV_AGENT: &str = "AGENTCRED_AGENT";

/// Which rule chose the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `--agent NAME`
    Flag,
    /// `AGENTCRED_AGENT=NAME`
    Env,
    /// An agent named like the program (`agentcred exec -- mybot`).
    ProgramName,
    /// An agent named like the script an interpreter runs (`agentcred exec -- python3
    /// bot.py`).
    ScriptName,
}

impl Rule {
    fn describe(self) -> &'static str {
        match self {
            Rule::Flag => "chosen by --agent",
            Rule::Env => "chosen by AGENTCRED_AGENT",
            Rule::ProgramName => "named like the program",
            Rule::ScriptName => "named like the script the interpreter runs",
        }
    }
}

/// The agent in effect for one exec.
#[derive(Clone, Debug)]
pub struct Chosen {
    pub name: AgentName,
    pub agent: Agent,
    pub rule: Rule,
}

/// What `exec` does beyond injecting: the command line's flags OR'ed with the agent's
/// policy. `mask` and `deny_overdue` are carried here for the exec stages that apply them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecPolicy {
    pub clean_env: bool,
    pub mask: bool,
    pub deny_overdue: bool,
    pub sandbox: bool,
    /// `exec --broker`.
    pub broker: bool,
}

impl ExecPolicy {
    fn with_agent(self, agent: &Agent) -> Self {
        ExecPolicy {
            clean_env: self.clean_env || agent.clean_env,
            mask: self.mask || agent.mask,
            deny_overdue: self.deny_overdue || agent.deny_overdue,
            sandbox: self.sandbox || agent.sandbox,
            broker: self.broker || agent.broker,
        }
    }
}

/// Which credentials to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Names {
    /// No `--only` and no agent: every credential in the store.
    Every,
    These(Vec<CredentialName>),
}

/// The outcome of selection: the names, the agent (if any) and the policy.
#[derive(Clone, Debug)]
pub struct Selection {
    pub names: Names,
    pub agent: Option<Chosen>,
    pub policy: ExecPolicy,
    /// `--only` decided the names (narrowing the agent, when there is one).
    pub by_only: bool,
}

/// Find the agent in effect: `--agent`, else `AGENTCRED_AGENT`, else an agent named like
/// the program's file name, else, for an interpreter (`python3 bot.py`), one named like
/// the script. A named agent that does not exist is an error (exit 4); a program name that
/// is not an agent is not.
pub fn choose_agent(
    flag: Option<&str>,
    env: Option<&OsStr>,
    program: &OsStr,
    args: &[OsString],
    mut find: impl FnMut(&AgentName) -> Result<Option<Agent>>,
) -> Result<Option<Chosen>> {
    let env = env.filter(|v| !v.is_empty());
    let named = match (flag, env) {
        (Some(flag), _) => Some((AgentName::parse(flag)?, Rule::Flag)),
        (None, Some(env)) => {
            let text = env
                .to_str()
                .ok_or_else(|| Error::Usage(format!("{ENV_AGENT} is not valid UTF-8 text")))?;
            let name =
                AgentName::parse(text).map_err(|e| Error::Usage(format!("{ENV_AGENT}: {e}")))?;
            Some((name, Rule::Env))
        }
        (None, None) => None,
    };
    if let Some((name, rule)) = named {
        let agent = find(&name)?.ok_or_else(|| Error::AgentNotFound {
            name: name.to_string(),
        })?;
        return Ok(Some(Chosen { name, agent, rule }));
    }
    if let Some(name) = program_basename(program).and_then(|b| AgentName::parse(b).ok())
        && let Some(agent) = find(&name)?
    {
        return Ok(Some(Chosen {
            name,
            agent,
            rule: Rule::ProgramName,
        }));
    }
    let Some(name) = script_name(program, args).and_then(|s| AgentName::parse(&s).ok()) else {
        return Ok(None);
    };
    Ok(find(&name)?.map(|agent| Chosen {
        name,
        agent,
        rule: Rule::ScriptName,
    }))
}

/// Interpreters whose first operand is the program that really runs. Versioned names
/// (`python3.12`, `nodejs`) count as theirs.
const INTERPRETERS: &[&str] = &[
    "python", "node", "nodejs", "ruby", "perl", "bash", "sh", "dash", "zsh", "ksh", "deno", "bun",
    "uv",
];

/// Options of those interpreters that take the next argument as their value.
const OPTIONS_WITH_VALUE: &[&str] = &[
    "-W",
    "-X",
    "-Q",
    "-r",
    "--require",
    "--import",
    "--loader",
    "-I",
    "-o",
    "-O",
    "--with",
    "--python",
    "--project",
    "--config",
];

/// Options after which there is no script: the code is inline (`-e` is errexit to a
/// shell, but code to node, ruby and perl).
fn inline_code(family: &str, option: &str) -> bool {
    match family {
        "node" | "nodejs" | "bun" => matches!(option, "-e" | "-p" | "--eval" | "--print"),
        "ruby" => option == "-e",
        "perl" => matches!(option, "-e" | "-E"),
        _ => option == "-c",
    }
}

/// The name of the script an interpreter runs (`python3 -u ./bots/bot.py` -> `bot`,
/// `python -m bot` -> `bot`, `uv run python bot.py` -> `bot`, `deno run -A bot.ts` ->
/// `bot`), or `None` when CMD is no interpreter or runs inline code.
pub fn script_name(program: &OsStr, args: &[OsString]) -> Option<String> {
    let base = program_basename(program)?;
    let family = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if !INTERPRETERS.contains(&family) {
        return None;
    }
    let mut rest = args.iter();
    // `deno run`, `bun run`, `uv run`: the subcommand comes first.
    if matches!(family, "deno" | "bun" | "uv") {
        let mut peek = rest.clone();
        if peek.next().is_some_and(|a| a == "run") {
            rest = peek;
        } else if family != "bun" {
            return None;
        }
    }
    while let Some(arg) = rest.next() {
        let text = arg.to_str()?;
        if inline_code(family, text) {
            return None;
        }
        if text == "-m" {
            // `python -m pkg.module`: the module that runs.
            let module = rest.next()?.to_str()?;
            return module.rsplit('.').next().map(str::to_string);
        }
        if text == "--" {
            continue;
        }
        if text.starts_with('-') {
            if OPTIONS_WITH_VALUE.contains(&text) {
                rest.next();
            }
            continue;
        }
        // `uv run python bot.py`: the interpreter uv runs, then its script.
        if family == "uv" {
            let remaining: Vec<OsString> = rest.cloned().collect();
            return script_name(arg, &remaining).or_else(|| stem(text));
        }
        return stem(text);
    }
    None
}

/// `./bots/bot.py` -> `bot`.
fn stem(path: &str) -> Option<String> {
    Path::new(path)
        .file_stem()
        .and_then(OsStr::to_str)
        .map(str::to_string)
}

/// Decide the names: `--only` when given (within the agent's allowance, when an agent
/// applies: asking for more is denied), else the agent's allowance, else every credential.
pub fn select(
    only: Vec<CredentialName>,
    agent: Option<Chosen>,
    flags: ExecPolicy,
) -> Result<Selection> {
    let policy = agent
        .as_ref()
        .map_or(flags, |chosen| flags.with_agent(&chosen.agent));
    let by_only = !only.is_empty();
    let names = match &agent {
        Some(chosen) if by_only => {
            if let Some(name) = only
                .iter()
                .find(|n| !chosen.agent.allow.contains(n.as_str()))
            {
                return Err(Error::NotAllowed {
                    agent: chosen.name.to_string(),
                    name: name.to_string(),
                });
            }
            Names::These(only)
        }
        Some(chosen) => Names::These(
            chosen
                .agent
                .allow
                .iter()
                .map(|n| CredentialName::parse(n))
                .collect::<Result<_>>()?,
        ),
        None if by_only => Names::These(only),
        None => Names::Every,
    };
    Ok(Selection {
        names,
        agent,
        policy,
        by_only,
    })
}

impl Selection {
    /// One line for `-v`: which rule decided, never a value.
    pub fn explain(&self, program: &OsStr) -> String {
        let mut text = String::new();
        match (&self.agent, self.by_only) {
            (Some(chosen), true) => {
                let _ = write!(
                    text,
                    "--only chose the credentials, within agent {} ({})",
                    chosen.name,
                    chosen.rule.describe()
                );
            }
            (Some(chosen), false) => {
                let _ = write!(
                    text,
                    "agent {} ({}) chose the credentials it allows",
                    chosen.name,
                    chosen.rule.describe()
                );
            }
            (None, true) => text.push_str("--only chose the credentials (no agent applies)"),
            (None, false) => {
                let _ = write!(
                    text,
                    "every credential: no --only, no --agent, no {ENV_AGENT}, and no agent named {}",
                    escape(&program_basename(program).map_or_else(
                        || Path::new(program).to_string_lossy().into_owned(),
                        String::from
                    ))
                );
            }
        }
        text
    }
}

/// The child's `AGENTCRED_AGENT`: the agent used, and never an inherited value otherwise.
pub fn set_agent_var(env: &mut Vec<(OsString, OsString)>, agent: Option<&AgentName>) {
    env.retain(|(key, _)| key != ENV_AGENT);
    if let Some(name) = agent {
        env.push((ENV_AGENT.into(), name.as_str().into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::program::{check_program, pin_program, program_sha256, resolve_program};
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    fn agent(allow: &[&str]) -> Agent {
        Agent {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            program: None,
            program_sha256: None,
            program_name: None,
            clean_env: false,
            mask: false,
            deny_overdue: false,
            sandbox: false,
            broker: false,
            created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            created_by: "me@host".into(),
            commands: BTreeMap::new(),
            mac: String::new(),
        }
    }

    fn agents() -> BTreeMap<String, Agent> {
        let mut map = BTreeMap::new();
        map.insert("bot".to_string(), agent(&["a", "b"]));
        map.insert("mybot".to_string(), agent(&["c"]));
        let mut strict = agent(&["a"]);
        strict.clean_env = true;
        strict.mask = true;
        map.insert("strict".to_string(), strict);
        map
    }

    fn choose(flag: Option<&str>, env: Option<&str>, program: &str) -> Result<Option<Chosen>> {
        let map = agents();
        choose_agent(flag, env.map(OsStr::new), OsStr::new(program), &[], |n| {
            Ok(map.get(n.as_str()).cloned())
        })
    }

    fn script(command: &[&str]) -> Option<String> {
        let args: Vec<OsString> = command[1..].iter().map(OsString::from).collect();
        script_name(OsStr::new(command[0]), &args)
    }

    #[test]
    fn interpreters_are_looked_through_to_their_script() {
        for (command, want) in [
            (&["python3", "bot.py"][..], Some("bot")),
            (
                &[
                    "/usr/bin/python3.12",
                    "-u",
                    "-W",
                    "ignore",
                    "./bots/bot.py",
                    "--x",
                ],
                Some("bot"),
            ),
            (&["python", "-m", "pkg.bot"], Some("bot")),
            (&["python3", "-c", "print(1)"], None),
            (
                &["node", "--require", "dotenv/config", "bot.js"],
                Some("bot"),
            ),
            (&["node", "-e", "1"], None),
            (&["ruby", "bot.rb"], Some("bot")),
            (&["perl", "-w", "bot.pl"], Some("bot")),
            (&["perl", "-e", "1"], None),
            (&["bash", "-e", "-o", "pipefail", "bot.sh"], Some("bot")),
            (&["sh", "-c", "bot.sh"], None),
            (&["dash", "bot"], Some("bot")),
            (&["deno", "run", "-A", "bot.ts"], Some("bot")),
            (&["deno", "eval", "1"], None),
            (&["bun", "bot.ts"], Some("bot")),
            (&["bun", "run", "bot.ts"], Some("bot")),
            (&["uv", "run", "bot.py"], Some("bot")),
            (
                &["uv", "run", "--with", "httpx", "python", "-u", "bot.py"],
                Some("bot"),
            ),
            (&["mybot", "other.py"], None),
            (&["python3"], None),
        ] {
            assert_eq!(script(command).as_deref(), want, "{command:?}");
        }
        let map = agents();
        let args = [OsString::from("-u"), OsString::from("bot.py")];
        let chosen = choose_agent(None, None, OsStr::new("python3"), &args, |n| {
            Ok(map.get(n.as_str()).cloned())
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            (chosen.name.as_str(), chosen.rule),
            ("bot", Rule::ScriptName)
        );
    }

    fn names(list: &[&str]) -> Vec<CredentialName> {
        list.iter()
            .map(|n| CredentialName::parse(n).unwrap())
            .collect()
    }

    #[test]
    fn agent_precedence_flag_env_program_name() {
        let c = choose(Some("bot"), Some("strict"), "mybot")
            .unwrap()
            .unwrap();
        assert_eq!((c.name.as_str(), c.rule), ("bot", Rule::Flag));
        let c = choose(None, Some("strict"), "./bin/mybot")
            .unwrap()
            .unwrap();
        assert_eq!((c.name.as_str(), c.rule), ("strict", Rule::Env));
        let c = choose(None, None, "/usr/local/bin/mybot").unwrap().unwrap();
        assert_eq!((c.name.as_str(), c.rule), ("mybot", Rule::ProgramName));
        let c = choose(None, Some(""), "mybot").unwrap().unwrap();
        assert_eq!(c.rule, Rule::ProgramName, "an empty variable is unset");
        assert!(choose(None, None, "other").unwrap().is_none());
        assert!(choose(None, None, "MyBot").unwrap().is_none());
    }

    #[test]
    fn a_named_agent_must_exist() {
        assert!(matches!(
            choose(Some("nope"), None, "mybot"),
            Err(Error::AgentNotFound { .. })
        ));
        assert!(matches!(
            choose(None, Some("nope"), "mybot"),
            Err(Error::AgentNotFound { .. })
        ));
        assert!(matches!(
            choose(Some("Bad/Name"), None, "x"),
            Err(Error::InvalidAgentName { .. })
        ));
        assert!(matches!(
            choose(None, Some("../x"), "x"),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn only_narrows_an_agent_and_may_not_widen_it() {
        let bot = choose(Some("bot"), None, "x").unwrap();
        let s = select(names(&["b"]), bot.clone(), ExecPolicy::default()).unwrap();
        assert_eq!(s.names, Names::These(names(&["b"])));
        assert!(s.by_only);
        let err = select(names(&["b", "c"]), bot.clone(), ExecPolicy::default()).unwrap_err();
        assert!(
            matches!(&err, Error::NotAllowed { agent, name } if agent == "bot" && name == "c"),
            "{err}"
        );
        let s = select(vec![], bot, ExecPolicy::default()).unwrap();
        assert_eq!(s.names, Names::These(names(&["a", "b"])));
        let s = select(names(&["c"]), None, ExecPolicy::default()).unwrap();
        assert_eq!(s.names, Names::These(names(&["c"])));
        let s = select(vec![], None, ExecPolicy::default()).unwrap();
        assert_eq!(s.names, Names::Every);
    }

    #[test]
    fn policy_is_the_flags_or_the_agents() {
        let strict = choose(Some("strict"), None, "x").unwrap();
        let s = select(vec![], strict, ExecPolicy::default()).unwrap();
        assert_eq!(
            s.policy,
            ExecPolicy {
                clean_env: true,
                mask: true,
                deny_overdue: false,
                sandbox: false,
                broker: false,
            }
        );
        let flags = ExecPolicy {
            deny_overdue: true,
            ..ExecPolicy::default()
        };
        let bot = choose(Some("bot"), None, "x").unwrap();
        assert_eq!(select(vec![], bot, flags).unwrap().policy, flags);
        assert_eq!(select(vec![], None, flags).unwrap().policy, flags);
    }

    #[test]
    fn explanations_name_the_rule() {
        let s = select(
            vec![],
            choose(None, Some("bot"), "x").unwrap(),
            ExecPolicy::default(),
        )
        .unwrap();
        assert!(
            s.explain(OsStr::new("x"))
                .contains("agent bot (chosen by AGENTCRED_AGENT)")
        );
        let s = select(vec![], None, ExecPolicy::default()).unwrap();
        assert!(
            s.explain(OsStr::new("./tool"))
                .contains("no agent named tool")
        );
    }

    #[test]
    fn resolves_like_execvp_and_checks_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("first"), dir.path().join("second"));
        std::fs::create_dir(&first).unwrap();
        std::fs::create_dir(&second).unwrap();
        let write = |path: &Path, text: &str, mode: u32| {
            std::fs::write(path, text).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write(&first.join("tool"), "#!/bin/sh\n", 0o644);
        write(&second.join("tool"), "#!/bin/sh\necho 2\n", 0o755);
        let path = std::env::join_paths([&first, &second]).unwrap();
        // The first `tool` cannot be run, so execvp would go on to the second.
        let found = resolve_program(OsStr::new("tool"), Some(&path)).unwrap();
        assert_eq!(found.found, second.join("tool"));
        assert!(matches!(
            resolve_program(OsStr::new("nope"), Some(&path)),
            Err(Error::CommandNotFound { .. })
        ));
        assert!(matches!(
            resolve_program(first.join("tool").as_os_str(), Some(&path)),
            Err(Error::NotExecutable { .. })
        ));
        let pinned = pin_program(OsStr::new("tool"), Some(&path)).unwrap();
        assert_eq!(pinned.name, "tool");
        let pinned = pinned.path;
        let mut bot = agent(&[]);
        bot.program = Some(pinned.clone());
        bot.program_sha256 = Some(program_sha256(Path::new(&pinned)).unwrap());
        let chosen = Chosen {
            name: AgentName::parse("bot").unwrap(),
            agent: bot,
            rule: Rule::Flag,
        };
        let checked = check_program(&chosen, &found, OsStr::new("tool")).unwrap();
        assert!(checked.path.starts_with("/dev/fd/"), "{:?}", checked.path);
        assert!(checked.opened.is_some());
        // The same file under another name (a multi-call binary's applet) is not the pin.
        assert!(matches!(
            check_program(&chosen, &found, OsStr::new("sh")),
            Err(Error::WrongProgram { .. })
        ));
        write(&first.join("tool"), "#!/bin/sh\necho 1\n", 0o755);
        let other = resolve_program(OsStr::new("tool"), Some(&path)).unwrap();
        assert!(matches!(
            check_program(&chosen, &other, OsStr::new("tool")),
            Err(Error::WrongProgram { .. })
        ));
        write(&second.join("tool"), "#!/bin/sh\necho changed\n", 0o755);
        assert!(matches!(
            check_program(&chosen, &found, OsStr::new("tool")),
            Err(Error::ProgramChanged { .. })
        ));
        assert!(matches!(
            pin_program(OsStr::new("nope"), Some(&path)),
            Err(Error::ProgramNotFound { .. })
        ));
        assert!(matches!(
            pin_program(first.as_os_str(), Some(&path)),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            pin_program(OsStr::new("/bin/busybox"), Some(&path)),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn the_child_gets_the_agent_used_and_no_other() {
        let mut env = vec![(OsString::from(ENV_AGENT), OsString::from("inherited"))];
        set_agent_var(&mut env, None);
        assert!(env.is_empty());
        set_agent_var(&mut env, Some(&AgentName::parse("bot").unwrap()));
        assert_eq!(env, [(OsString::from(ENV_AGENT), OsString::from("bot"))]);
    }
}
