# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_agentcred_global_optspecs
    string join \n store= no-input v/verbose h/help V/version
end

function __fish_agentcred_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_agentcred_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_agentcred_using_subcommand
    set -l cmd (__fish_agentcred_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c agentcred -n "__fish_agentcred_needs_command" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_needs_command" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_needs_command" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_needs_command" -s h -l help -d 'Print help'
complete -c agentcred -n "__fish_agentcred_needs_command" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "init" -d 'Create a store (and an identity if you have none)'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "add" -d 'Store a credential (value from a hidden prompt, stdin, or --from-file)'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "get" -d 'Print a credential\'s value (a newline is added only on a terminal)'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "list" -d 'List credentials: name, env, backend, kind, rotation status'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "show" -d 'Show one credential\'s metadata and history (never its value)'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "rm" -d 'Delete a credential (its value and its metadata)'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "rotate" -d 'Replace a credential\'s value and restart its rotation clock'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "due" -d 'List credentials overdue or due soon for rotation, soonest first'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "exec" -d 'Run a program with credentials injected as environment variables'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "import" -d 'Import a .env file (KEY=value lines; comments, quotes and `export` allowed)'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "export" -d 'Print credentials\' values as .env, JSON or shell (prefer `exec`)'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "identity" -d 'Print your age recipient (public key), for a store member to add'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "scan" -d 'Find stored values in files: `file:line: NAME`, never the value (exit 1 when found)'
complete -c agentcred -n "__fish_agentcred_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c agentcred -n "__fish_agentcred_using_subcommand init" -l identity -d 'Where to keep a new identity' -r -f -a "file\t'A file in the config dir (~/.config/agentcred/identity.txt), 0600'"
complete -c agentcred -n "__fish_agentcred_using_subcommand init" -l recipient -d 'Also encrypt to this age recipient (repeatable)' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand init" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand init" -l passphrase -d 'Protect a new identity file with a passphrase (AGENTCRED_PASSPHRASE or a prompt)'
complete -c agentcred -n "__fish_agentcred_using_subcommand init" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand init" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c agentcred -n "__fish_agentcred_using_subcommand init" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l env -d 'Environment variable to inject it as [default: the name upper-cased]' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l backend -d 'Where the value lives' -r -f -a "age\t'An age-encrypted file in the store\'s `secrets/` folder'"
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l kind -d 'How the value reaches a program' -r -f -a "secret\t'The value goes into the environment variable'
file\t'The value is written to a private file while the program runs; the variable holds the file\'s path (for key files such as GOOGLE_APPLICATION_CREDENTIALS)'"
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l rotate-every -d 'Rotation period, like 90d, 12w, 6mo, 1y [default: the store\'s, 90d]' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l due -d 'Due for rotation on this date (2027-01-31 or RFC 3339)' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l rotated-at -d 'When the value was last rotated, if before now (for existing keys)' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l description -d 'A note for people (no secrets)' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l from-file -d 'Read the value from this file, bytes kept exactly' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l no-rotation -d 'Never due for rotation'
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l force -d 'Replace an existing credential'
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c agentcred -n "__fish_agentcred_using_subcommand add" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand get" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand get" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand get" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand get" -s h -l help -d 'Print help'
complete -c agentcred -n "__fish_agentcred_using_subcommand get" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand list" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand list" -l json -d 'One JSON document on stdout'
complete -c agentcred -n "__fish_agentcred_using_subcommand list" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand list" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand list" -s h -l help -d 'Print help'
complete -c agentcred -n "__fish_agentcred_using_subcommand list" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand show" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand show" -l json -d 'One JSON document on stdout'
complete -c agentcred -n "__fish_agentcred_using_subcommand show" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand show" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand show" -s h -l help -d 'Print help'
complete -c agentcred -n "__fish_agentcred_using_subcommand show" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand rm" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand rm" -s y -l yes -d 'Do not ask for confirmation'
complete -c agentcred -n "__fish_agentcred_using_subcommand rm" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand rm" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand rm" -s h -l help -d 'Print help'
complete -c agentcred -n "__fish_agentcred_using_subcommand rm" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand rotate" -l from-file -d 'Read the new value from this file, bytes kept exactly' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand rotate" -l generate -d 'Take the new value from this command\'s stdout (run with `sh -c`)' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand rotate" -l verify -d 'Check the new value with this command (run with `sh -c`, the value in the credential\'s variable); keep the old value if it fails' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand rotate" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand rotate" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand rotate" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand rotate" -s h -l help -d 'Print help'
complete -c agentcred -n "__fish_agentcred_using_subcommand rotate" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand due" -l within -d 'List what is due within DUR (90d, 12w, 6mo, 1y, 36h) [default: the store\'s window, 14d]' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand due" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand due" -l json -d 'One JSON document on stdout'
complete -c agentcred -n "__fish_agentcred_using_subcommand due" -l check -d 'Exit 3 when any credential is overdue'
complete -c agentcred -n "__fish_agentcred_using_subcommand due" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand due" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand due" -s h -l help -d 'Print help'
complete -c agentcred -n "__fish_agentcred_using_subcommand due" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand exec" -l only -d 'Inject only these credentials (comma-separated or repeated)' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand exec" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand exec" -l clean-env -d 'Start from an empty environment plus PATH, HOME, USER, LANG, TERM, TMPDIR'
complete -c agentcred -n "__fish_agentcred_using_subcommand exec" -l deny-overdue -d 'Refuse to start the program when a selected credential is overdue (exit 3)'
complete -c agentcred -n "__fish_agentcred_using_subcommand exec" -l mask -d 'Replace injected values (and their base64 and URL-encoded forms) in the program\'s stdout and stderr with <agentcred:NAME>; a terminal stays a terminal'
complete -c agentcred -n "__fish_agentcred_using_subcommand exec" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand exec" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand exec" -s h -l help -d 'Print help'
complete -c agentcred -n "__fish_agentcred_using_subcommand exec" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand import" -l rotated-at -d 'When these keys were last rotated, if before now' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand import" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand import" -l force -d 'Replace credentials that already exist'
complete -c agentcred -n "__fish_agentcred_using_subcommand import" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand import" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand import" -s h -l help -d 'Print help'
complete -c agentcred -n "__fish_agentcred_using_subcommand import" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand export" -l only -d 'Export only these credentials (comma-separated or repeated)' -r
complete -c agentcred -n "__fish_agentcred_using_subcommand export" -l format -d 'Output format' -r -f -a "dotenv\t'KEY=\'value\' lines'
json\t'One JSON object, {"KEY": "value"}'
shell\t'export KEY=\'value\' lines, safe to eval in any POSIX shell'"
complete -c agentcred -n "__fish_agentcred_using_subcommand export" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand export" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand export" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c agentcred -n "__fish_agentcred_using_subcommand export" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand identity" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand identity" -l public -d 'Print the public recipient (age1...)'
complete -c agentcred -n "__fish_agentcred_using_subcommand identity" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand identity" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand identity" -s h -l help -d 'Print help'
complete -c agentcred -n "__fish_agentcred_using_subcommand identity" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand scan" -l store -d 'The store directory [default: ~/.local/share/agentcred]' -r -F
complete -c agentcred -n "__fish_agentcred_using_subcommand scan" -l mark-compromised -d 'Mark every credential found due for rotation now, recording where it was found'
complete -c agentcred -n "__fish_agentcred_using_subcommand scan" -l no-ignore -d 'Also search files excluded by .gitignore, .ignore and .git/info/exclude'
complete -c agentcred -n "__fish_agentcred_using_subcommand scan" -l json -d 'One JSON document on stdout'
complete -c agentcred -n "__fish_agentcred_using_subcommand scan" -l no-input -d 'Never prompt; fail instead when input would be needed'
complete -c agentcred -n "__fish_agentcred_using_subcommand scan" -s v -l verbose -d 'Say more on stderr (never values)'
complete -c agentcred -n "__fish_agentcred_using_subcommand scan" -s h -l help -d 'Print help'
complete -c agentcred -n "__fish_agentcred_using_subcommand scan" -s V -l version -d 'Print version'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "init" -d 'Create a store (and an identity if you have none)'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "add" -d 'Store a credential (value from a hidden prompt, stdin, or --from-file)'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "get" -d 'Print a credential\'s value (a newline is added only on a terminal)'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "list" -d 'List credentials: name, env, backend, kind, rotation status'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "show" -d 'Show one credential\'s metadata and history (never its value)'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "rm" -d 'Delete a credential (its value and its metadata)'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "rotate" -d 'Replace a credential\'s value and restart its rotation clock'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "due" -d 'List credentials overdue or due soon for rotation, soonest first'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "exec" -d 'Run a program with credentials injected as environment variables'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "import" -d 'Import a .env file (KEY=value lines; comments, quotes and `export` allowed)'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "export" -d 'Print credentials\' values as .env, JSON or shell (prefer `exec`)'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "identity" -d 'Print your age recipient (public key), for a store member to add'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "scan" -d 'Find stored values in files: `file:line: NAME`, never the value (exit 1 when found)'
complete -c agentcred -n "__fish_agentcred_using_subcommand help; and not __fish_seen_subcommand_from init add get list show rm rotate due exec import export identity scan help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
