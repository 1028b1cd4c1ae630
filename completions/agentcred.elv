
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
            cand exec 'Run a program with credentials injected as environment variables'
            cand import 'Import a .env file (KEY=value lines; comments, quotes and `export` allowed)'
            cand export 'Print credentials'' values as .env, JSON or shell (prefer `exec`)'
            cand identity 'Print your age recipient (public key), for a store member to add'
            cand unlock 'Cache your decrypted identity for a while, so commands stop asking for the passphrase'
            cand lock 'Forget the cached identity (undo `agentcred unlock`)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'agentcred;init'= {
            cand --identity 'Where to keep a new identity [default: keychain when one is reachable, else file]'
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
        &'agentcred;exec'= {
            cand --only 'Inject only these credentials (comma-separated or repeated)'
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --clean-env 'Start from an empty environment plus PATH, HOME, USER, LANG, TERM, TMPDIR'
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
        &'agentcred;unlock'= {
            cand --for 'How long: 90s, 15m, 8h or 1d (at most 7d)'
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
            cand --no-input 'Never prompt; fail instead when input would be needed'
            cand -v 'Say more on stderr (never values)'
            cand --verbose 'Say more on stderr (never values)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'agentcred;lock'= {
            cand --store 'The store directory [default: ~/.local/share/agentcred]'
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
            cand exec 'Run a program with credentials injected as environment variables'
            cand import 'Import a .env file (KEY=value lines; comments, quotes and `export` allowed)'
            cand export 'Print credentials'' values as .env, JSON or shell (prefer `exec`)'
            cand identity 'Print your age recipient (public key), for a store member to add'
            cand unlock 'Cache your decrypted identity for a while, so commands stop asking for the passphrase'
            cand lock 'Forget the cached identity (undo `agentcred unlock`)'
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
        &'agentcred;help;exec'= {
        }
        &'agentcred;help;import'= {
        }
        &'agentcred;help;export'= {
        }
        &'agentcred;help;identity'= {
        }
        &'agentcred;help;unlock'= {
        }
        &'agentcred;help;lock'= {
        }
        &'agentcred;help;help'= {
        }
    ]
    $completions[$command]
}
