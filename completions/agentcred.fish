complete --keep-order --exclusive --command agentcred --arguments "(AGENTCRED_COMPLETE=fish agentcred -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
