
set edit:completion:arg-completer[agentcred] = { |@words|
    var index = (count $words)
    set index = (- $index 1)

    put (env _CLAP_IFS="\n" _CLAP_COMPLETE_INDEX=(to-string $index) AGENTCRED_COMPLETE="elvish" agentcred -- $@words) | to-lines
}

