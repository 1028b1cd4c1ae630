//! Validated names: credential names, agent names and environment variable names.
//!
//! A `CredentialName` is also a file name in `secrets/`, so validation here is what keeps
//! `../x` or `a/b` from ever reaching the filesystem. Every type can only be built through
//! its parser.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::output::escape;

/// Linux refuses a single environment string over 128 KiB (MAX_ARG_STRLEN).
pub const MAX_ENV_VALUE: usize = 128 * 1024;

pub const MAX_NAME_LEN: usize = 64;
const MAX_ENV_LEN: usize = 128;

/// A credential's name: lowercase `[a-z0-9][a-z0-9._-]*`, at most 64 characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CredentialName(String);

impl CredentialName {
    /// A comma-separated or repeated list of names (`--only a,b --only c`).
    pub fn parse_list(raw: &[String]) -> Result<Vec<CredentialName>> {
        raw.iter()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.is_empty())
            .map(CredentialName::parse)
            .collect()
    }

    /// Parse a name as typed by a user. A name in environment-variable form
    /// (`OPENAI_API_KEY`) is normalized to `openai-api-key`.
    pub fn parse(input: &str) -> Result<Self> {
        let looks_like_env = !input.is_empty()
            && input
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            && input.bytes().any(|b| b.is_ascii_uppercase());
        let candidate = if looks_like_env {
            input.to_ascii_lowercase().replace('_', "-")
        } else {
            input.to_string()
        };
        Self::validate(&candidate).map_err(|reason| Error::InvalidName {
            name: escape(input),
            reason: reason.into(),
        })?;
        Ok(CredentialName(candidate))
    }

    /// A name as the manifest stores it: valid as it is (no normalization), else `None`.
    /// Takes the string without copying it (10,000 of them for `exec` of every credential).
    pub fn stored(name: String) -> Option<Self> {
        Self::validate(&name).ok().map(|()| CredentialName(name))
    }

    /// Whether `name` is valid as the manifest stores it (see [`CredentialName::stored`]).
    pub fn validate_stored(name: &str) -> bool {
        Self::validate(name).is_ok()
    }

    pub fn into_string(self) -> String {
        self.0
    }

    fn validate(name: &str) -> std::result::Result<(), &'static str> {
        let first = name.bytes().next().ok_or("it is empty")?;
        if name.len() > MAX_NAME_LEN {
            return Err("it is longer than 64 characters");
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err("it must start with a lowercase letter or a digit");
        }
        if let Some(bad) = name.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        }) {
            return Err(if bad.is_ascii_uppercase() {
                "it must be lowercase"
            } else {
                "only a-z, 0-9, '.', '_' and '-' are allowed"
            });
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The environment variable a credential gets unless told otherwise:
    /// upper-cased, with `-` and `.` turned into `_`.
    pub fn default_env(&self) -> Result<EnvVarName> {
        let env: String = self
            .0
            .chars()
            .map(|c| match c {
                '-' | '.' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        EnvVarName::parse(&env).map_err(|_| Error::InvalidEnvVar {
            name: env,
            reason: format!(
                "it is the default for credential {} but not a valid variable name; give one with --env",
                self.0
            ),
        })
    }
}

impl fmt::Display for CredentialName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An agent's name: the characters of a credential name, but never normalized from
/// environment-variable form, because `exec` matches it against program names as they are.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentName(String);

impl AgentName {
    pub fn parse(input: &str) -> Result<Self> {
        CredentialName::validate(input).map_err(|reason| Error::InvalidAgentName {
            name: escape(input),
            reason: reason.into(),
        })?;
        Ok(AgentName(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An environment variable name a credential may be injected as: `[A-Za-z_][A-Za-z0-9_]*`,
/// and not one of the variables that change how programs load or run.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvVarName(String);

/// Exact names refused as injection targets. Compared upper-cased.
const REFUSED_EXACT: &[&str] = &[
    "PATH",
    "BASH_ENV",
    "ENV",
    "IFS",
    "PS4",
    "PS0",
    "PROMPT_COMMAND",
    "SHELLOPTS",
    "BASHOPTS",
    "CDPATH",
    "GLOBIGNORE",
    "ZDOTDIR",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PYTHONINSPECT",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RES_OPTIONS",
    "SHELL",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "HOME",
    "GLIBC_TUNABLES",
    "LUA_INIT",
    "LUA_PATH",
    "LUA_CPATH",
    "PYTHONWARNINGS",
    "PYTHONBREAKPOINT",
    "PERL5DB",
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_PROXY_COMMAND",
    "GIT_DIR",
    "GIT_TEMPLATE_DIR",
    "DOTNET_STARTUP_HOOKS",
    "PHPRC",
    "GEM_PATH",
    "GEM_HOME",
    "BUNDLE_GEMFILE",
    "LESSOPEN",
    "LESSCLOSE",
    "BROWSER",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "NODE_TLS_REJECT_UNAUTHORIZED",
    // TLS trust turned off or redirected, and TLS keys logged (GIT_SSL_* is a prefix below).
    "SSLKEYLOGFILE",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "OPENSSL_MODULES",
    "PYTHONHTTPSVERIFY",
    "AWS_CA_BUNDLE",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "CARGO_HTTP_CAINFO",
    "PIP_CERT",
    "PIP_TRUSTED_HOST",
    "UV_INSECURE_HOST",
    "HTTPLIB2_CA_CERTS",
    "NIX_SSL_CERT_FILE",
    "DENO_CERT",
    "DENO_TLS_CA_STORE",
    "GIT_CURL_VERBOSE",
    "GOINSECURE",
    "GONOSUMDB",
    "GONOSUMCHECK",
    "GOSUMDB",
    "GOPRIVATE",
    "GONOPROXY",
    "GOFLAGS",
    "GOTOOLCHAIN",
    // Programs run by tools and shells (names ending in _EDITOR, _PAGER, _ASKPASS are
    // refused below).
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC",
    "RUSTDOC",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CC",
    "CXX",
    "CPP",
    "LD",
    "AR",
    "MAKEFLAGS",
    "MANPAGER",
    "MANOPT",
    "FCEDIT",
    "TERMINAL",
    "PS1",
    "PS2",
    "PS3",
    "ELECTRON_RUN_AS_NODE",
    "NODE_REPL_EXTERNAL_MODULE",
    "PERL5SHELL",
    "PERLDB_OPTS",
    "RUBYSHELL",
    "JAVA_OPTS",
    "MAVEN_OPTS",
    "GRADLE_OPTS",
    "SBT_OPTS",
    "ANT_OPTS",
    "CATALINA_OPTS",
    "ERL_AFLAGS",
    "ERL_ZFLAGS",
    "ERL_LIBS",
    "R_PROFILE",
    "R_PROFILE_USER",
    "R_ENVIRON",
    "R_ENVIRON_USER",
    "PHP_INI_SCAN_DIR",
    "TCLLIBPATH",
    "GTK_PATH",
    "GTK_MODULES",
    "QT_PLUGIN_PATH",
    "GST_PLUGIN_PATH",
    "PYTHONEXECUTABLE",
    "PYTHONPLATLIBDIR",
    "PYTHONUSERBASE",
    "PYTHONSAFEPATH",
    "PYTHONNOUSERSITE",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_OBJECT_DIRECTORY",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_CEILING_DIRECTORIES",
    // Other configuration loaded in place of the user's (which can name programs to run,
    // such as AWS's credential_process, kubectl's exec plugins or docker's helpers).
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "YARN_RC_FILENAME",
    "PIP_CONFIG_FILE",
    "CURL_HOME",
    "WGETRC",
    "NETRC",
    "GNUPGHOME",
    "XDG_CONFIG_HOME",
    "XDG_CONFIG_DIRS",
    "BOTO_CONFIG",
    "CLOUDSDK_CONFIG",
    "TF_CLI_CONFIG_FILE",
    "KUBECONFIG",
    "DOCKER_CONFIG",
    "HGRCPATH",
    "INPUTRC",
    // Proxy variables stay allowed: a proxy URL with credentials is a real secret, and
    // with TLS trust pinned by the refusals above a proxy sees host names, not traffic.
];

/// Prefixes refused as injection targets. Compared upper-cased.
const REFUSED_PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "MALLOC_",
    "GIT_CONFIG",
    "AGENTCRED_",
    "CORECLR_",
    "COMPLUS_",
    "DOTNET_",
    "GIT_SSL_",
    "GIT_TRACE",
    "NPM_CONFIG_",
    "CARGO_BUILD_",
    "CARGO_TARGET_",
];

/// Suffixes refused as injection targets: the commands tools run to edit, page or ask for
/// a password (`GIT_SEQUENCE_EDITOR`, `SYSTEMD_PAGER`, `SUDO_ASKPASS`). Compared upper-cased.
const REFUSED_SUFFIXES: &[&str] = &["_EDITOR", "_PAGER", "_ASKPASS"];

impl EnvVarName {
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidEnvVar {
            name: escape(input),
            reason: reason.into(),
        };
        let first = input.bytes().next().ok_or_else(|| invalid("it is empty"))?;
        if input.len() > MAX_ENV_LEN {
            return Err(invalid("it is longer than 128 characters"));
        }
        if !(first.is_ascii_alphabetic() || first == b'_') {
            return Err(invalid("it must start with a letter or '_'"));
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(invalid("only A-Z, a-z, 0-9 and '_' are allowed"));
        }
        if is_refused(input) {
            return Err(Error::RefusedEnvVar {
                var: input.to_string(),
            });
        }
        Ok(EnvVarName(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_refused(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    REFUSED_EXACT.contains(&upper.as_str())
        || REFUSED_PREFIXES.iter().any(|p| upper.starts_with(p))
        || REFUSED_SUFFIXES.iter().any(|s| upper.ends_with(s))
}

impl TryFrom<String> for EnvVarName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        EnvVarName::parse(&value)
    }
}

impl From<EnvVarName> for String {
    fn from(value: EnvVarName) -> Self {
        value.0
    }
}

impl fmt::Display for EnvVarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a credential's value reaches a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The value goes into the environment variable.
    Secret,
    /// The value is an OAuth 2.0 client secret; programs get an access token minted with it.
    Oauth2,
    /// The value is written to a private file while the program runs; the variable holds
    /// the file's path (for key files such as GOOGLE_APPLICATION_CREDENTIALS).
    File,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Oauth2 => "oauth2",
            Kind::File => "file",
        }
    }
}

/// Where a credential's value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// An age-encrypted file in the store's `secrets/` folder.
    Age,
    /// The OS keychain (Secret Service, macOS Keychain, Windows Credential Manager).
    Keychain,
    /// A HashiCorp Vault or OpenBao KV v2 engine, shared by a fleet.
    Vault,
}

impl BackendKind {
    /// Every kind, in the order a transaction finishes them.
    pub const ALL: [BackendKind; 3] = [BackendKind::Age, BackendKind::Keychain, BackendKind::Vault];

    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Age => "age",
            BackendKind::Keychain => "keychain",
            BackendKind::Vault => "vault",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            CredentialName::parse("openai-api-key").unwrap().as_str(),
            "openai-api-key"
        );
        assert_eq!(
            CredentialName::parse("OPENAI_API_KEY").unwrap().as_str(),
            "openai-api-key"
        );
        assert_eq!(
            CredentialName::parse("a.b_c-1").unwrap().as_str(),
            "a.b_c-1"
        );
        assert_eq!(CredentialName::parse("9lives").unwrap().as_str(), "9lives");
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "-a",
            ".hidden",
            "Mixed",
            "a b",
            "a\u{202e}b",
            "a\nb",
        ] {
            assert!(CredentialName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(CredentialName::parse(&"a".repeat(64)).is_ok());
        assert!(CredentialName::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn agent_names_follow_credential_rules_without_normalizing() {
        assert_eq!(AgentName::parse("my-bot.v2").unwrap().as_str(), "my-bot.v2");
        for bad in [
            "",
            "MYBOT",
            "My-bot",
            "../x",
            "a/b",
            ".x",
            "a b",
            "a\u{202e}b",
        ] {
            assert!(
                matches!(AgentName::parse(bad), Err(Error::InvalidAgentName { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(AgentName::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn default_env() {
        let name = CredentialName::parse("openai.api-key").unwrap();
        assert_eq!(name.default_env().unwrap().as_str(), "OPENAI_API_KEY");
        assert!(
            CredentialName::parse("1password")
                .unwrap()
                .default_env()
                .is_err()
        );
    }

    #[test]
    fn env_names() {
        assert!(EnvVarName::parse("OPENAI_API_KEY").is_ok());
        // Secrets people do inject, next to refused families.
        for allowed in [
            "HTTPS_PROXY",
            "GOPROXY",
            "NPM_TOKEN",
            "CARGO_REGISTRY_TOKEN",
            "GITHUB_TOKEN",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "AWS_SECRET_ACCESS_KEY",
            "PYTHONANYWHERE_API_TOKEN",
        ] {
            assert!(EnvVarName::parse(allowed).is_ok(), "{allowed}");
        }
        assert!(EnvVarName::parse("_x").is_ok());
        for bad in ["", "1A", "A-B", "A B", "A=B"] {
            assert!(
                matches!(EnvVarName::parse(bad), Err(Error::InvalidEnvVar { .. })),
                "{bad}"
            );
        }
        for refused in [
            "PATH",
            "path",
            "LD_PRELOAD",
            "DYLD_INSERT_LIBRARIES",
            "BASH_ENV",
            "NODE_OPTIONS",
            "AGENTCRED_AGENT",
            "GIT_SSH_COMMAND",
            "git_ssl_no_verify",
            "SUDO_ASKPASS",
            "GIT_SEQUENCE_EDITOR",
            "NPM_CONFIG_USERCONFIG",
            "GIT_TRACE_CURL",
        ] {
            assert!(
                matches!(EnvVarName::parse(refused), Err(Error::RefusedEnvVar { .. })),
                "{refused}"
            );
        }
    }
}
