//! The fast path: a manifest known (by its seal) to be in agentcred's canonical layout is
//! read by cutting out the one section a command needs and parsing only that.

use std::borrow::Cow;

use super::*;
use crate::error::Result;
use crate::model::credential::{AgentName, CredentialName};
use crate::model::settings::VaultSettings;

/// Parse the header: the lines before the first table.
pub fn header(text: &str) -> Result<Header> {
    let end = text.find("\n[").map_or(text.len(), |i| i + 1);
    let header: Header = toml::from_str(&text[..end]).map_err(toml_error)?;
    check_store_id(&header.store_id)?;
    if header.format != FORMAT {
        return Err(Error::integrity(
            FILE_NAME,
            format!(
                "store format {} is not supported by this agentcred (format {FORMAT})",
                header.format
            ),
        ));
    }
    Ok(header)
}

/// The names of a top-level table's sub-tables (`[credentials.NAME]`), read from the
/// headers alone, without parsing or verifying anything: for shell completion.
pub fn table_names(text: &str, table: &str) -> Vec<String> {
    let prefix = format!("[{table}.");
    text.lines()
        .filter(|line| starts_section(line))
        .filter_map(|line| line.strip_prefix(&prefix)?.strip_suffix(']'))
        .map(|key| key.trim_matches('"').to_string())
        .filter(|name| !name.is_empty() && !name.chars().any(char::is_control))
        .collect()
}

/// Whether a line opens a new section: a table header of at most two keys (`[defaults]`,
/// `[credentials.NAME]`, `[agents.NAME]`). Deeper tables (`[credentials.NAME.oauth]`) and arrays of tables
/// (`[[credentials.NAME.history]]`) belong to the section above them.
pub(super) fn starts_section(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else {
        return false;
    };
    if rest.starts_with('[') {
        return false;
    }
    let mut depth = 1;
    let mut quoted = false;
    for c in rest.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => depth += 1,
            ']' if !quoted => return depth <= 2,
            '\n' => return false,
            _ => {}
        }
    }
    false
}

/// How agentcred writes a credential's or agent's table key.
pub(super) fn table_key(name: &str) -> Cow<'_, str> {
    if name.contains('.') {
        Cow::Owned(format!("\"{name}\""))
    } else {
        Cow::Borrowed(name)
    }
}

/// Cut one credential's entry out of a manifest known (by its seal) to be in canonical
/// layout, and parse only that. `Ok(None)` when the store has no such credential.
pub fn find_entry(text: &str, name: &CredentialName) -> Result<Option<Entry>> {
    let Some(section) = find_section(text, "credentials", name.as_str()) else {
        return Ok(None);
    };
    let mut table: EntryTable = toml::from_str(section).map_err(toml_error)?;
    Ok(table.credentials.remove(name.as_str()))
}

/// Like [`find_entry`], for an agent.
pub fn find_agent(text: &str, name: &AgentName) -> Result<Option<Agent>> {
    let Some(section) = find_section(text, "agents", name.as_str()) else {
        return Ok(None);
    };
    let mut table: AgentTable = toml::from_str(section).map_err(toml_error)?;
    Ok(table.agents.remove(name.as_str()))
}

/// The text of the section `[table.name]` with its nested tables, in canonical layout.
fn find_section<'t>(text: &'t str, table: &str, name: &str) -> Option<&'t str> {
    let key = table_key(name);
    let heading = format!("[{table}.{key}]\n");
    let start = if text.starts_with(&heading) {
        0
    } else {
        text.find(&format!("\n{heading}"))? + 1
    };
    let nested = [format!("[{table}.{key}."), format!("[[{table}.{key}.")];
    let mut end = text.len();
    let mut search = start + heading.len();
    while let Some(i) = text[search..].find("\n[") {
        let line_start = search + i + 1;
        if !nested
            .iter()
            .any(|n| text[line_start..].starts_with(n.as_str()))
        {
            end = line_start;
            break;
        }
        search = line_start;
    }
    Some(&text[start..end])
}

/// The `[defaults]` table of a manifest known (by its seal) to be in canonical layout, for
/// readers that take the fast path to their entries but need the rotation defaults.
pub fn find_defaults(text: &str) -> Result<Defaults> {
    const HEADING: &str = "[defaults]\n";
    let Some(start) = text.find(&format!("\n{HEADING}")).map(|i| i + 1) else {
        return Ok(Defaults::default());
    };
    let body = start + HEADING.len();
    let end = text[body..]
        .find("\n[")
        .map_or(text.len(), |i| body + i + 1);
    let table: DefaultsIn = toml::from_str(&text[start..end]).map_err(toml_error)?;
    Ok(table.defaults)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsIn {
    defaults: Defaults,
}

/// The `[vault]` table of a manifest known (by its seal) to be in canonical layout, for
/// readers on the fast path; `None` when the store has none.
pub fn find_vault(text: &str) -> Result<Option<VaultSettings>> {
    const HEADING: &str = "[vault]\n";
    let Some(start) = text.find(&format!("\n{HEADING}")).map(|i| i + 1) else {
        return Ok(None);
    };
    let body = start + HEADING.len();
    let end = text[body..]
        .find("\n[")
        .map_or(text.len(), |i| body + i + 1);
    let table: VaultTable = toml::from_str(&text[start..end]).map_err(toml_error)?;
    Ok(Some(table.vault))
}
