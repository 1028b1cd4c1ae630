
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'agentcred' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'agentcred'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'agentcred' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a store (and an identity if you have none)')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Store a credential (value from a hidden prompt, stdin, or --from-file)')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Print a credential''s value (a newline is added only on a terminal)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List credentials: name, env, backend, kind, rotation status')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one credential''s metadata and history (never its value)')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete a credential (its value and its metadata)')
            [CompletionResult]::new('rotate', 'rotate', [CompletionResultType]::ParameterValue, 'Replace a credential''s value and restart its rotation clock')
            [CompletionResult]::new('due', 'due', [CompletionResultType]::ParameterValue, 'List credentials overdue or due soon for rotation, soonest first')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run a program with credentials injected as environment variables')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Import a .env file (KEY=value lines; comments, quotes and `export` allowed)')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Print credentials'' values as .env, JSON or shell (prefer `exec`)')
            [CompletionResult]::new('identity', 'identity', [CompletionResultType]::ParameterValue, 'Print your age recipient (public key), for a store member to add')
            [CompletionResult]::new('scan', 'scan', [CompletionResultType]::ParameterValue, 'Find stored values in files: `file:line: NAME`, never the value (exit 1 when found)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'agentcred;init' {
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Where to keep a new identity')
            [CompletionResult]::new('--recipient', '--recipient', [CompletionResultType]::ParameterName, 'Also encrypt to this age recipient (repeatable)')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--passphrase', '--passphrase', [CompletionResultType]::ParameterName, 'Protect a new identity file with a passphrase (AGENTCRED_PASSPHRASE or a prompt)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;add' {
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'Environment variable to inject it as [default: the name upper-cased]')
            [CompletionResult]::new('--backend', '--backend', [CompletionResultType]::ParameterName, 'Where the value lives')
            [CompletionResult]::new('--kind', '--kind', [CompletionResultType]::ParameterName, 'How the value reaches a program')
            [CompletionResult]::new('--rotate-every', '--rotate-every', [CompletionResultType]::ParameterName, 'Rotation period, like 90d, 12w, 6mo, 1y [default: the store''s, 90d]')
            [CompletionResult]::new('--due', '--due', [CompletionResultType]::ParameterName, 'Due for rotation on this date (2027-01-31 or RFC 3339)')
            [CompletionResult]::new('--rotated-at', '--rotated-at', [CompletionResultType]::ParameterName, 'When the value was last rotated, if before now (for existing keys)')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'A note for people (no secrets)')
            [CompletionResult]::new('--from-file', '--from-file', [CompletionResultType]::ParameterName, 'Read the value from this file, bytes kept exactly')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--no-rotation', '--no-rotation', [CompletionResultType]::ParameterName, 'Never due for rotation')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace an existing credential')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;get' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;list' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON document on stdout')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;show' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON document on stdout')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;rm' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;rotate' {
            [CompletionResult]::new('--from-file', '--from-file', [CompletionResultType]::ParameterName, 'Read the new value from this file, bytes kept exactly')
            [CompletionResult]::new('--generate', '--generate', [CompletionResultType]::ParameterName, 'Take the new value from this command''s stdout (run with `sh -c`)')
            [CompletionResult]::new('--verify', '--verify', [CompletionResultType]::ParameterName, 'Check the new value with this command (run with `sh -c`, the value in the credential''s variable); keep the old value if it fails')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;due' {
            [CompletionResult]::new('--within', '--within', [CompletionResultType]::ParameterName, 'List what is due within DUR (90d, 12w, 6mo, 1y, 36h) [default: the store''s window, 14d]')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON document on stdout')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Exit 3 when any credential is overdue')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;exec' {
            [CompletionResult]::new('--only', '--only', [CompletionResultType]::ParameterName, 'Inject only these credentials (comma-separated or repeated)')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--clean-env', '--clean-env', [CompletionResultType]::ParameterName, 'Start from an empty environment plus PATH, HOME, USER, LANG, TERM, TMPDIR')
            [CompletionResult]::new('--deny-overdue', '--deny-overdue', [CompletionResultType]::ParameterName, 'Refuse to start the program when a selected credential is overdue (exit 3)')
            [CompletionResult]::new('--mask', '--mask', [CompletionResultType]::ParameterName, 'Replace injected values (and their base64 and URL-encoded forms) in the program''s stdout and stderr with <agentcred:NAME>; a terminal stays a terminal')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;import' {
            [CompletionResult]::new('--rotated-at', '--rotated-at', [CompletionResultType]::ParameterName, 'When these keys were last rotated, if before now')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace credentials that already exist')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;export' {
            [CompletionResult]::new('--only', '--only', [CompletionResultType]::ParameterName, 'Export only these credentials (comma-separated or repeated)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;identity' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--public', '--public', [CompletionResultType]::ParameterName, 'Print the public recipient (age1...)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;scan' {
            [CompletionResult]::new('--store', '--store', [CompletionResultType]::ParameterName, 'The store directory [default: ~/.local/share/agentcred]')
            [CompletionResult]::new('--mark-compromised', '--mark-compromised', [CompletionResultType]::ParameterName, 'Mark every credential found due for rotation now, recording where it was found')
            [CompletionResult]::new('--no-ignore', '--no-ignore', [CompletionResultType]::ParameterName, 'Also search files excluded by .gitignore, .ignore and .git/info/exclude')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON document on stdout')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail instead when input would be needed')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more on stderr (never values)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'agentcred;help' {
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a store (and an identity if you have none)')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Store a credential (value from a hidden prompt, stdin, or --from-file)')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Print a credential''s value (a newline is added only on a terminal)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List credentials: name, env, backend, kind, rotation status')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show one credential''s metadata and history (never its value)')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete a credential (its value and its metadata)')
            [CompletionResult]::new('rotate', 'rotate', [CompletionResultType]::ParameterValue, 'Replace a credential''s value and restart its rotation clock')
            [CompletionResult]::new('due', 'due', [CompletionResultType]::ParameterValue, 'List credentials overdue or due soon for rotation, soonest first')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run a program with credentials injected as environment variables')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Import a .env file (KEY=value lines; comments, quotes and `export` allowed)')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Print credentials'' values as .env, JSON or shell (prefer `exec`)')
            [CompletionResult]::new('identity', 'identity', [CompletionResultType]::ParameterValue, 'Print your age recipient (public key), for a store member to add')
            [CompletionResult]::new('scan', 'scan', [CompletionResultType]::ParameterValue, 'Find stored values in files: `file:line: NAME`, never the value (exit 1 when found)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'agentcred;help;init' {
            break
        }
        'agentcred;help;add' {
            break
        }
        'agentcred;help;get' {
            break
        }
        'agentcred;help;list' {
            break
        }
        'agentcred;help;show' {
            break
        }
        'agentcred;help;rm' {
            break
        }
        'agentcred;help;rotate' {
            break
        }
        'agentcred;help;due' {
            break
        }
        'agentcred;help;exec' {
            break
        }
        'agentcred;help;import' {
            break
        }
        'agentcred;help;export' {
            break
        }
        'agentcred;help;identity' {
            break
        }
        'agentcred;help;scan' {
            break
        }
        'agentcred;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
