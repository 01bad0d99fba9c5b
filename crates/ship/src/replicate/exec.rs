//! `-exec CMD`: run the application as walcast's child, as Litestream does. The command
//! runs through `sh -c`; SIGINT/SIGTERM received by walcast are forwarded to it; when it
//! exits, walcast finishes its last sync and upload and exits with the child's code.

use std::process::{Child, Command, ExitStatus};

use anyhow::Context;
use rustix::process::{Pid, Signal, kill_process};
use tracing::{info, warn};

/// The application started with `-exec`.
pub struct ExecChild {
    child: Child,
    command: String,
    forwarded: bool,
}

impl ExecChild {
    pub fn spawn(command: &str) -> anyhow::Result<Self> {
        let child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .spawn()
            .with_context(|| format!("cannot start -exec command {command:?}"))?;
        info!(pid = child.id(), "started {command:?}");
        Ok(Self {
            child,
            command: command.to_owned(),
            forwarded: false,
        })
    }

    /// The child's status once it has exited.
    pub fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Passes walcast's shutdown on to the child (once): SIGTERM.
    pub fn forward_shutdown(&mut self) {
        if self.forwarded {
            return;
        }
        self.forwarded = true;
        let pid = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw);
        match pid.map(|pid| kill_process(pid, Signal::TERM)) {
            Some(Ok(())) => info!("forwarded shutdown to {:?}", self.command),
            Some(Err(e)) => warn!("cannot signal {:?}: {e}", self.command),
            None => {}
        }
    }

    /// Asks the child to stop (if not done yet) and waits for it; records its status.
    pub fn forward_shutdown_and_wait(
        mut self,
        status: &mut Option<ExitStatus>,
    ) -> anyhow::Result<()> {
        self.forward_shutdown();
        *status = Some(self.child.wait()?);
        Ok(())
    }
}

/// The exit code walcast should end with for the child's status (128 + signal if killed,
/// as shells report it).
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
