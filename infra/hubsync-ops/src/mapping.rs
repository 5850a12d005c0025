//! `mapping show|validate|set|preview`: a portal's mapping config, with
//! the admin operations of [`hubsync_admin::mapping`] on the deployment's
//! own store, KMS-decrypted tokens (refreshed single-flight, like the
//! functions) and HubSpot client (the portal's shared HubSpot budget).
//!
//! `set` validates and saves, then queues a re-sync of the types whose
//! mapping changed (the `resync` command's job), since stored records
//! change only when they are remapped.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hubsync_admin::mapping::{
    preview, save_config, show_config, validate_config, ConfigErrors, MappingConfig, MappingError,
    Outcome, Preview,
};
use hubsync_hubspot::{ObjectType, PortalId};
use serde_json::json;

use crate::resync::{self, WaitOptions};
use crate::Ops;

/// What `mapping set` does after saving.
#[derive(Debug, Clone, Copy)]
pub struct AfterSave {
    /// Queue a re-sync of the changed types (`--no-resync`: don't).
    pub resync: bool,
    /// Re-sync only this type (default: the types whose mapping changed).
    pub object: Option<ObjectType>,
    /// Follow the re-sync to its end (`--wait`).
    pub wait: Option<WaitOptions>,
}

fn read_config(file: &Path) -> Result<MappingConfig> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    MappingConfig::from_json(&text)
        .with_context(|| format!("{} is not a mapping config", file.display()))
}

/// A rejected config as an error naming every bad rule.
fn rejected(errors: &ConfigErrors, nothing: &str) -> anyhow::Error {
    let mut text = format!(
        "the mapping config was rejected ({} problem{}); {nothing}",
        errors.0.len(),
        if errors.0.len() == 1 { "" } else { "s" }
    );
    for e in &errors.0 {
        text.push_str("\n  rejected: ");
        text.push_str(&e.to_string());
    }
    anyhow::anyhow!(text)
}

fn rejection_json(portal: u64, errors: &ConfigErrors) -> serde_json::Value {
    json!({"portal_id": portal, "valid": false, "errors": errors.0})
}

/// `mapping show`: the stored config and its revision, or the default
/// (saying so).
pub async fn show(
    ops: &Ops,
    portal: u64,
    as_json: bool,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let store = ops.store()?;
    let current = show_config(&store, PortalId(portal))
        .await
        .with_context(|| format!("read the mapping config of portal {portal}"))?;
    if as_json {
        writeln!(out, "{}", serde_json::to_string_pretty(&current)?)?;
        return Ok(());
    }
    match (current.revision, &current.updated_at) {
        (Some(revision), updated_at) => writeln!(
            out,
            "portal {portal}: mapping config revision {revision}, saved {}",
            updated_at.as_deref().unwrap_or("(time not recorded)")
        )?,
        (None, _) => writeln!(
            out,
            "portal {portal}: no mapping config is stored; the default (DESIGN.md's field map) applies"
        )?,
    }
    writeln!(out, "{}", current.config.to_json_pretty())?;
    Ok(())
}

/// `mapping validate`: checks `file` against the portal's HubSpot
/// properties and lists; a rejection names every bad rule and fails.
pub async fn validate(
    ops: &Ops,
    portal: u64,
    file: &Path,
    as_json: bool,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let config = read_config(file)?;
    let tokens = ops.connection_tokens().await?;
    let client = ops.hubspot_client()?;
    match validate_config(&client, &tokens, PortalId(portal), &config).await {
        Ok(valid) => {
            if as_json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"portal_id": portal, "valid": true, "config": valid})
                    )?
                )?;
            } else {
                let counts: Vec<String> = ObjectType::ALL
                    .into_iter()
                    .map(|t| format!("{t} {} rules", valid.object(t).rules.len()))
                    .collect();
                writeln!(
                    out,
                    "{} is valid for portal {portal} ({})",
                    file.display(),
                    counts.join(", ")
                )?;
            }
            Ok(())
        }
        Err(MappingError::Rejected(errors)) => {
            if as_json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&rejection_json(portal, &errors))?
                )?;
            }
            Err(rejected(&errors, "it was not saved"))
        }
        Err(e) => Err(e).with_context(|| format!("validate the mapping config of portal {portal}")),
    }
}

/// `mapping set`: validates and saves `file` (nothing is stored when it is
/// rejected), then queues a re-sync of the changed types.
pub async fn set(
    ops: &Ops,
    portal: u64,
    file: &Path,
    after: AfterSave,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let config = read_config(file)?;
    let tokens = ops.connection_tokens().await?;
    let client = ops.hubspot_client()?;
    let store = ops.store()?;
    if after.resync {
        // Before saving: a config saved for a portal whose re-sync would be
        // refused would change nothing until it is reconnected.
        resync::require_active(&store, portal).await?;
    }
    let saved = match save_config(&store, &client, &tokens, PortalId(portal), &config).await {
        Ok(saved) => saved,
        Err(MappingError::Rejected(errors)) => return Err(rejected(&errors, "nothing was saved")),
        Err(e) => {
            return Err(e).with_context(|| format!("save the mapping config of portal {portal}"))
        }
    };
    let changed: Vec<String> = saved
        .changed_types
        .iter()
        .map(ToString::to_string)
        .collect();
    writeln!(
        out,
        "saved mapping config revision {} for portal {portal} (replacing {}); changed: {}",
        saved.revision,
        match saved.previous_revision {
            Some(r) => format!("revision {r}"),
            None => "the default".to_owned(),
        },
        if changed.is_empty() {
            "nothing".to_owned()
        } else {
            changed.join(", ")
        }
    )?;
    if !after.resync {
        writeln!(
            out,
            "no re-sync queued (--no-resync): stored records change at the next reconciliation or `hubsync-ops resync --portal {portal}`"
        )?;
        return Ok(());
    }
    let types = match after.object {
        Some(t) => vec![t],
        None if saved.changed_types.is_empty() => {
            writeln!(out, "no object type's mapping changed; no re-sync queued")?;
            return Ok(());
        }
        None => saved.changed_types.clone(),
    };
    let queued = resync::queue_types(ops, &store, portal, types)
        .await
        .with_context(|| {
            format!(
                "revision {} is saved, but queueing its re-sync failed; retry with `hubsync-ops resync --portal {portal}`",
                saved.revision
            )
        })?;
    resync::print_queued(portal, &queued, out)?;
    match after.wait {
        Some(options) => resync::follow(&store, portal, &queued, options, out).await,
        None => Ok(()),
    }
}

/// `mapping preview`: maps a sample of the portal's records with `file`
/// (default: the config it maps with now) and prints the app records and
/// every field error. Writes nothing.
pub async fn preview_command(
    ops: &Ops,
    portal: u64,
    file: Option<&PathBuf>,
    object: Option<ObjectType>,
    sample: u32,
    as_json: bool,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let tokens = ops.connection_tokens().await?;
    let client = ops.hubspot_client()?;
    let store = ops.store()?;
    let (config, source) = match file {
        Some(f) => (read_config(f)?, f.display().to_string()),
        None => {
            let current = show_config(&store, PortalId(portal))
                .await
                .with_context(|| format!("read the mapping config of portal {portal}"))?;
            let source = match current.revision {
                Some(r) => format!("stored revision {r}"),
                None => "the default config".to_owned(),
            };
            (current.config, source)
        }
    };
    let types: Vec<ObjectType> = match object {
        Some(t) => vec![t],
        None => ObjectType::ALL.to_vec(),
    };
    let result = match preview(&client, &tokens, PortalId(portal), &config, &types, sample).await {
        Ok(p) => p,
        Err(MappingError::Rejected(errors)) => {
            if as_json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&rejection_json(portal, &errors))?
                )?;
            }
            return Err(rejected(&errors, "nothing was previewed"));
        }
        Err(e) => return Err(e).with_context(|| format!("preview the mapping of portal {portal}")),
    };
    if as_json {
        writeln!(out, "{}", serde_json::to_string_pretty(&result)?)?;
    } else {
        print_preview(&result, &source, out)?;
    }
    Ok(())
}

/// The preview as text: per type a summary line, the properties asked
/// for, then one line per sampled record (its app record, or why it is not
/// synced) followed by its field errors.
pub fn print_preview(p: &Preview, source: &str, out: &mut (dyn Write + Send)) -> Result<()> {
    writeln!(
        out,
        "preview of portal {} with {source} (read-only: nothing is written)",
        p.portal_id
    )?;
    for t in &p.types {
        let skipped: usize = t.skipped.values().sum();
        let reasons: Vec<String> = t.skipped.iter().map(|(r, n)| format!("{r} {n}")).collect();
        writeln!(
            out,
            "{}: {} sampled, {} mapped, {skipped} skipped{}, {} field error{}",
            t.object_type,
            t.records.len(),
            t.mapped,
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            },
            t.field_errors,
            if t.field_errors == 1 { "" } else { "s" }
        )?;
        writeln!(out, "  properties requested: {}", t.properties.join(", "))?;
        for outcome in &t.records {
            let errors = match outcome {
                Outcome::Mapped(m) => {
                    writeln!(
                        out,
                        "  {} {}: {}",
                        t.object_type,
                        m.id,
                        serde_json::to_string(&m.record)?
                    )?;
                    &m.errors
                }
                Outcome::Skipped {
                    id, reason, errors, ..
                } => {
                    writeln!(out, "  {} {id}: skipped ({reason})", t.object_type)?;
                    errors
                }
            };
            for e in errors {
                writeln!(out, "    field error: {e}")?;
            }
        }
    }
    Ok(())
}
