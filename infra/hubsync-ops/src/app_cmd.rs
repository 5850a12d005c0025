//! `hubspot-app render|check`: the HubSpot project files from a deployed
//! stack (its outputs through CloudFormation, or a saved
//! `aws cloudformation describe-stacks` answer) and the deployment's
//! mapping configs (its Control table).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use hubsync_store::{DynamoStore, StoreConfig};

use crate::hubspot_app::{self, AppInputs};

/// Where the stack's outputs come from.
#[derive(Debug, Clone)]
pub enum OutputsFrom<'a> {
    /// `DescribeStacks` of this stack (name or id).
    Stack(&'a str),
    /// A file holding `aws cloudformation describe-stacks` output.
    File(&'a Path),
}

/// The stack's outputs, `OutputKey` → `OutputValue`.
pub async fn stack_outputs(
    aws: &aws_config::SdkConfig,
    from: OutputsFrom<'_>,
) -> Result<BTreeMap<String, String>> {
    let pairs: Vec<(String, String)> = match from {
        OutputsFrom::Stack(name) => {
            let out = aws_sdk_cloudformation::Client::new(aws)
                .describe_stacks()
                .stack_name(name)
                .send()
                .await
                .with_context(|| format!("DescribeStacks of stack {name}"))?;
            let stack = out
                .stacks()
                .first()
                .with_context(|| format!("no stack named {name}"))?;
            stack
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
                .collect()
        }
        OutputsFrom::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not the JSON of `aws cloudformation describe-stacks`",
                    path.display()
                )
            })?;
            v["Stacks"][0]["Outputs"]
                .as_array()
                .with_context(|| format!("{} has no Stacks[0].Outputs", path.display()))?
                .iter()
                .filter_map(|o| {
                    Some((
                        o["OutputKey"].as_str()?.to_owned(),
                        o["OutputValue"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        }
    };
    Ok(pairs.into_iter().collect())
}

/// The deployment's store, from the stack's table outputs.
fn store_of(
    aws: &aws_config::SdkConfig,
    outputs: &BTreeMap<String, String>,
) -> Result<DynamoStore> {
    let table = |k: &str| {
        outputs
            .get(k)
            .with_context(|| format!("the stack has no output `{k}`"))
    };
    Ok(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        StoreConfig::new(table("RecordsTableName")?, table("ControlTableName")?),
    ))
}

/// Options of `render` beyond the stack.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub name: String,
    pub distribution: String,
    pub support_email: Option<String>,
}

/// Renders the project into `out_dir`, checks it, and says what to do next.
pub async fn render(
    aws: &aws_config::SdkConfig,
    from: OutputsFrom<'_>,
    options: &RenderOptions,
    out_dir: &Path,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let outputs = stack_outputs(aws, from).await?;
    let mut inputs = AppInputs::from_outputs(&outputs, &options.name)?;
    inputs.distribution = options.distribution.clone();
    inputs.support_email = options.support_email.clone();
    let configs = hubspot_app::saved_configs(&store_of(aws, &outputs)?).await?;
    let files = hubspot_app::render(&inputs, &configs);
    let problems = hubspot_app::check(&files, &configs);
    if !problems.is_empty() {
        bail!(
            "the rendered project does not pass its check:\n  {}",
            problems.join("\n  ")
        );
    }
    hubspot_app::write(out_dir, &files)?;
    let properties: usize = hubspot_app::mapped_properties(&configs)
        .values()
        .map(|p| p.len())
        .sum();
    writeln!(
        out,
        "rendered the HubSpot project into {} ({} saved mapping configs, {properties} property subscriptions)",
        out_dir.display(),
        configs.len()
    )?;
    for (path, _) in &files {
        writeln!(out, "  {path}")?;
    }
    writeln!(
        out,
        "next: cd {} && hs project upload   (see docs/OPERATIONS.md §1)",
        out_dir.display()
    )?;
    Ok(())
}

/// Checks a project directory against the deployment's current mapping
/// configs (exit 1 naming each problem).
pub async fn check(
    aws: &aws_config::SdkConfig,
    from: OutputsFrom<'_>,
    dir: &Path,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let outputs = stack_outputs(aws, from).await?;
    let configs = hubspot_app::saved_configs(&store_of(aws, &outputs)?).await?;
    let problems = hubspot_app::check(&hubspot_app::read(dir), &configs);
    if problems.is_empty() {
        writeln!(
            out,
            "{}: the HubSpot project covers every mapped property",
            dir.display()
        )?;
        return Ok(());
    }
    bail!(
        "{}: {} problem(s):\n  {}",
        dir.display(),
        problems.len(),
        problems.join("\n  ")
    )
}
