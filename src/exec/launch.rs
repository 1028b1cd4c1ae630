//! What is executed for a plan: the program itself, or, with a sandbox, agentcred's
//! trampoline, which restricts itself and then executes the program ([`crate::sandbox`]).
//! A sandboxed program is told so in its environment.
//!
//! In exec-replace mode agentcred restricts itself right before `execve` instead
//! (`sandbox_here`): the same restrictions, one `execve` fewer. Landlock and seccomp bind
//! the calling thread, the one that executes the program; the other threads end at
//! `execve`. The mount namespace needs a user namespace, which only a single-threaded
//! process may enter: when agentcred has other threads, the trampoline does it.

use std::ffi::OsString;

use crate::exec::ExecPlan;

pub(super) struct Launch {
    pub program: OsString,
    pub argv0: OsString,
    pub args: Vec<OsString>,
    /// Apply the sandbox to this process right before `execve` (replace mode only).
    pub sandbox_here: bool,
}

impl Launch {
    pub fn new(plan: &ExecPlan, env: &mut Vec<(OsString, OsString)>, replace: bool) -> Launch {
        let direct = Launch {
            program: plan.program.clone(),
            argv0: plan.argv0.clone(),
            args: plan.args.clone(),
            sandbox_here: false,
        };
        let Some(spec) = &plan.sandbox else {
            return direct;
        };
        env.retain(|(key, _)| key != crate::sandbox::ENV_SANDBOXED);
        env.push((crate::sandbox::ENV_SANDBOXED.into(), "1".into()));
        if replace && spec.applies_here() {
            return Launch {
                sandbox_here: true,
                ..direct
            };
        }
        Launch {
            program: "/proc/self/exe".into(),
            argv0: "agentcred".into(),
            args: spec.trampoline_args(&plan.program, &plan.argv0, &plan.args),
            sandbox_here: false,
        }
    }
}
