
Register-ArgumentCompleter -Native -CommandName agentcred -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $prev = $env:AGENTCRED_COMPLETE;
    $env:AGENTCRED_COMPLETE = "powershell";

    $args = $commandAst.Extent.Text
    $args = $args.Substring(0, [math]::Min($cursorPosition, $args.Length));
    if ($wordToComplete -eq "") {
        $args += " ''";
    }

    $results = Invoke-Expression @"
& agentcred -- $args
"@;
    if ($null -eq $prev) {
        Remove-Item Env:\AGENTCRED_COMPLETE;
    } else {
        $env:AGENTCRED_COMPLETE = $prev;
    }
    $results | ForEach-Object {
        $split = $_.Split("`t");
        $cmd = $split[0];

        if ($split.Length -eq 2) {
            $help = $split[1];
        }
        else {
            $help = $split[0];
        }

        [System.Management.Automation.CompletionResult]::new($cmd, $cmd, 'ParameterValue', $help)
    }
};
        
