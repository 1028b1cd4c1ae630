//! `agentcred mcp`: serve the MCP tools on stdio (see [`crate::mcp`]).

use std::io;

use clap::Args;

use crate::cli::context::Ctx;
use crate::crypto::identity::{self, Unlock};
use crate::error::Error;
use crate::mcp::{self, tools::Tools};
use crate::model::credential::AgentName;
use crate::policy::ENV_AGENT;
use crate::store::Store;

/// Serve an agent's credentials to an MCP client on stdio, without revealing them
#[derive(Debug, Args)]
#[command(
    after_help = "The client (Claude Code, Claude Desktop, Cursor, ...) starts this command and
speaks JSON-RPC on its stdin and stdout; logs go to stderr. Its tools cannot return a
credential value: list_credentials (names and rotation status), http_request (through
the credential's upstream route), run (commands declared with `agent command add`).
It never prompts: a passphrase-protected identity needs AGENTCRED_PASSPHRASE or
`agentcred unlock` first.

Examples:
  agentcred mcp --agent llm
  claude mcp add agentcred -- agentcred mcp --agent llm"
)]
pub struct McpArgs {
    /// The agent whose credentials and commands are served [default: $AGENTCRED_AGENT]
    #[arg(long, value_name = "AGENT")]
    agent: Option<String>,
}

impl McpArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        // The client owns stdin: nothing may ever wait for a person.
        crate::crypto::os_keychain::allow_prompts(false);
        let agent = match self.agent {
            Some(name) => Some(AgentName::parse(&name)?),
            None => match std::env::var(ENV_AGENT) {
                Ok(name) if !name.is_empty() => Some(
                    AgentName::parse(&name)
                        .map_err(|e| Error::Usage(format!("{ENV_AGENT}: {e}")))?,
                ),
                _ => None,
            },
        };
        let store = Store::open(&ctx.store_dir, crate::util::output::say_on_stderr())?;
        let identity = identity::load(Unlock { may_prompt: false })?;
        // Refuse at start what would fail every call: a missing agent, a broken store.
        let reader = store.reader(&identity)?;
        if let Some(name) = &agent
            && reader.agent(name)?.is_none()
        {
            return Err(Error::AgentNotFound {
                name: name.to_string(),
            }
            .into());
        }
        drop(reader);
        match &agent {
            Some(name) => eprintln!("agentcred mcp: serving agent {name}"),
            None => eprintln!(
                "warning: agentcred mcp: no agent: the client may use every credential in the store; pass --agent NAME"
            ),
        }
        let mut tools = Tools {
            store_dir: store.root().to_path_buf(),
            identity: &identity,
            agent,
        };
        let stdin = io::stdin().lock();
        let stdout = io::stdout().lock();
        mcp::serve(&mut tools, stdin, stdout)?;
        Ok(())
    }
}
