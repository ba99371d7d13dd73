# bash completion for steppy - commands from `steppy help`, options from
# `steppy COMMAND --help`, so it follows the installed binary.
_steppy()
{
    local cur prev cmd
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$(steppy help 2>/dev/null | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p') --help --version" -- "$cur"))
        return
    fi
    cmd=${COMP_WORDS[1]}
    case $prev in
    --db | --config | --token-file | --var-file)
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    --format | --log-format)
        COMPREPLY=($(compgen -W "text json" -- "$cur"))
        return
        ;;
    esac
    if [ "$cmd" = store ] && [ "$COMP_CWORD" -eq 2 ] && [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -W "backup check migrate" -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(steppy "$cmd" --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)" -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _steppy steppy
