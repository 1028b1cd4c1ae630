
use builtin;
use str;

set edit:completion:arg-completer[agentcred] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'agentcred'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'agentcred'= {
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand init 'Create a store (and an identity if you have none)'
            cand add 'Store a credential (value from a hidden prompt, stdin, or --from-file)'
            cand get 'Print a credential''s value (a newline is added only on a terminal)'
            cand list 'List credentials: name, env, backend, kind, rotation status'
            cand show 'Show one credential''s metadata and history (never its value)'
            cand rm 'Delete a credential (its value and its metadata)'
            cand rotate 'Replace a credential''s value and restart its rotation clock'
            cand due 'List credentials overdue or due soon for rotation, soonest first'
            cand exec 'Run a program with credentials injected as environment variables'
            cand import 'Import a .env file (KEY=value lines; comments, quotes and `export` allowed)'
            cand export 'Print credentials'' values as .env, JSON or shell (prefer `exec`)'
            cand identity 'Print your age recipient (public key), for a store member to add'
            cand scan 'Find stored values in files: `file:line: NAME`, never the value (exit 1 when found)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'agentcred;init'= {
            cand --identity 'Where to keep a new identity'
            cand --recipient 'Also encrypt to this age recipient (repeatable)'
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --passphrase 'Protect a new identity file with a passphrase (AGENTCRED_PASSPHRASE or a prompt)'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;add'= {
            cand --env 'Environment variable to inject it as [default: the name upper-cased]'
            cand --backend 'Where the value lives'
            cand --kind 'How the value reaches a program'
            cand --rotate-every 'Rotation period, like 90d, 12w, 6mo, 1y [default: the store''s, 90d]'
            cand --due 'Due for rotation on this date (2027-01-31 or RFC 3339)'
            cand --rotated-at 'When the value was last rotated, if before now (for existing keys)'
            cand --description 'A note for people (no secrets)'
            cand --from-file 'Read the value from this file, bytes kept exactly'
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --no-rotation 'Never due for rotation'
            cand --force 'Replace an existing credential'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;get'= {
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;list'= {
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --json 'One JSON document on stdout'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;show'= {
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --json 'One JSON document on stdout'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;rm'= {
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;rotate'= {
            cand --from-file 'Read the new value from this file, bytes kept exactly'
            cand --generate 'Take the new value from this command''s stdout (run with `sh -c`)'
            cand --verify 'Check the new value with this command (run with `sh -c`, the value in the credential''s variable); keep the old value if it fails'
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;due'= {
            cand --within 'List what is due within DUR (90d, 12w, 6mo, 1y, 36h) [default: the store''s window, 14d]'
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --json 'One JSON document on stdout'
            cand --check 'Exit 3 when any credential is overdue'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;exec'= {
            cand --only 'Inject only these credentials (comma-separated or repeated)'
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --clean-env 'Start from an empty environment plus PATH, HOME, USER, LANG, TERM, TMPDIR'
            cand --deny-overdue 'Refuse to start the program when a selected credential is overdue (exit 3)'
            cand --mask 'Replace injected values (and their base64 and URL-encoded forms) in the program''s stdout and stderr with <agentcred:NAME>; a terminal stays a terminal'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;import'= {
            cand --rotated-at 'When these keys were last rotated, if before now'
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --force 'Replace credentials that already exist'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;export'= {
            cand --only 'Export only these credentials (comma-separated or repeated)'
            cand --format 'Output format'
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;identity'= {
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --public 'Print the public recipient (age1...)'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;scan'= {
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --mark-compromised 'Mark every credential found due for rotation now, recording where it was found'
            cand --no-ignore 'Also search files excluded by .gitignore, .ignore and .git/info/exclude'
            cand --json 'One JSON document on stdout'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;help'= {
            cand init 'Create a store (and an identity if you have none)'
            cand add 'Store a credential (value from a hidden prompt, stdin, or --from-file)'
            cand get 'Print a credential''s value (a newline is added only on a terminal)'
            cand list 'List credentials: name, env, backend, kind, rotation status'
            cand show 'Show one credential''s metadata and history (never its value)'
            cand rm 'Delete a credential (its value and its metadata)'
            cand rotate 'Replace a credential''s value and restart its rotation clock'
            cand due 'List credentials overdue or due soon for rotation, soonest first'
            cand exec 'Run a program with credentials injected as environment variables'
            cand import 'Import a .env file (KEY=value lines; comments, quotes and `export` allowed)'
            cand export 'Print credentials'' values as .env, JSON or shell (prefer `exec`)'
            cand identity 'Print your age recipient (public key), for a store member to add'
            cand scan 'Find stored values in files: `file:line: NAME`, never the value (exit 1 when found)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'agentcred;help;init'= {
        }
        &'agentcred;help;add'= {
        }
        &'agentcred;help;get'= {
        }
        &'agentcred;help;list'= {
        }
        &'agentcred;help;show'= {
        }
        &'agentcred;help;rm'= {
        }
        &'agentcred;help;rotate'= {
        }
        &'agentcred;help;due'= {
        }
        &'agentcred;help;exec'= {
        }
        &'agentcred;help;import'= {
        }
        &'agentcred;help;export'= {
        }
        &'agentcred;help;identity'= {
        }
        &'agentcred;help;scan'= {
        }
        &'agentcred;help;help'= {
        }
    ]
    $completions[$command]
}
