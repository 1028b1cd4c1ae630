//! What is executed for a plan: the program itself, or, with a sandbox, agentcred's
//! trampoline, which restricts itself and then executes the program ([`crate::sandbox`]).
//! A sandboxed program is told so in its environment.
//!
//! A sandboxed program always runs as a child (spawn mode), so that agentcred outlives
//! it and ends what it left behind (see `exec::contain`).

use std::ffi::OsString;

use crate::exec::ExecPlan;

pub(super) struct Launch {
    pub program: OsString,
    pub argv0: OsString,
    pub args: Vec<OsString>,
}

impl Launch {
    pub fn new(plan: &ExecPlan, env: &mut Vec<(OsString, OsString)>) -> Launch {
        let Some(spec) = &plan.sandbox else {
            return Launch {
                program: plan.program.clone(),
                argv0: plan.argv0.clone(),
                args: plan.args.clone(),
            };
        };
        env.retain(|(key, _)| key != crate::sandbox::ENV_SANDBOXED);
        env.push((crate::sandbox::ENV_SANDBOXED.into(), "1".into()));
        Launch {
            program: "/proc/self/exe".into(),
            argv0: "agentcred".into(),
            args: spec.trampoline_args(&plan.program, &plan.argv0, &plan.args),
        }
    }
}
