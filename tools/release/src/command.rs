//! Running the platform's tools (docker-compose, docker, helm, kubectl) behind a trait, so the
//! platforms are tested with a runner that records the calls and answers as the tools would.

use std::process::Command;

/// A failed or unrunnable command, with what it printed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program could not be started.
    #[error("{program} could not be started: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The program exited non-zero.
    #[error("`{command}` exited with {code:?}: {stderr}")]
    Failed {
        /// The whole command line.
        command: String,
        /// Its exit code.
        code: Option<i32>,
        /// What it wrote on stderr (trimmed).
        stderr: String,
    },
}

/// One program call: program, arguments and extra environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Invocation {
    /// `program args...` without extra environment.
    #[must_use]
    pub fn new(program: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { program: program.to_owned(), args: args.into_iter().map(Into::into).collect(), env: Vec::new() }
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The command line, for messages.
    #[must_use]
    pub fn line(&self) -> String {
        std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
    }
}

/// Runs invocations and returns their stdout.
pub trait CommandRunner: Send + Sync {
    /// Runs `invocation` to completion.
    ///
    /// # Errors
    /// When it cannot start or exits non-zero.
    fn run(&self, invocation: &Invocation) -> Result<String, CommandError>;
}

/// Runs real processes.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, invocation: &Invocation) -> Result<String, CommandError> {
        let output = Command::new(&invocation.program)
            .args(&invocation.args)
            .envs(invocation.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .map_err(|source| CommandError::Spawn { program: invocation.program.clone(), source })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(CommandError::Failed {
                command: invocation.line(),
                code: output.status.code(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_command_returns_its_stdout_and_a_failure_its_stderr() {
        let ok = SystemRunner.run(&Invocation::new("sh", ["-c", "echo $GREETING"]).env("GREETING", "hi")).expect("ok");
        assert_eq!(ok, "hi\n");
        let failed = SystemRunner.run(&Invocation::new("sh", ["-c", "echo broken >&2; exit 4"])).expect_err("fails");
        let text = failed.to_string();
        assert!(text.contains("Some(4)") && text.contains("broken"), "{text}");
    }
}
