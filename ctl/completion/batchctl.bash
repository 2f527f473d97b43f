# shellcheck shell=bash disable=SC2207
# (COMPREPLY=($(compgen ...)) is the idiom of bash completions: the words never contain blanks.)
# bash completion for batchctl(1): commands, options, job names (from "batchctl list-jobs") and execution
# ids (from "batchctl list-executions").
# SPDX-License-Identifier: LGPL-2.1-or-later

__batchctl() {
        # Same bus as the command line being completed.
        local bus_opt=()
        if [[ " ${COMP_WORDS[*]} " == *" --user "* ]]; then
                bus_opt=(--user)
        fi
        command batchctl "${bus_opt[@]}" --no-pager --no-legend "$@" 2>/dev/null
}

__batchctl_jobs() {
        __batchctl list-jobs | { while read -r name _; do printf '%s\n' "$name"; done; }
}

__batchctl_executions() {
        # $1: an extended regular expression the STATUS column must match (default: any)
        local status=${1:-.}
        __batchctl list-executions | awk -v s="$status" '$4 ~ s { print $1 }'
}

_batchctl() {
        local cur prev words cword
        if declare -F _init_completion >/dev/null 2>&1; then
                _init_completion -n = || return
        else
                COMPREPLY=()
                cur=${COMP_WORDS[COMP_CWORD]}
                prev=${COMP_WORDS[COMP_CWORD-1]}
                words=("${COMP_WORDS[@]}")
                cword=$COMP_CWORD
        fi

        local verbs='start next restart stop abandon reload enable disable revert purge status list-jobs list-executions list-timers show cat logs nodes calendar verify metrics help step'
        local step_verbs='get put commit status total exit-code'
        local job_properties='Name Description Schedule NextElapseUSec LastFireUSec Restartable Steps LastExecutionId LastStatus
                              RunningExecutions SourcePath SourceLine User Group WorkingDirectory Parameters
                              TimeoutUSec Incrementer Persistent CatchUp RandomizedDelayUSec Overlap
                              ScheduleParameter Enabled EnabledOverride EnabledInFile'
        local execution_properties='Id InstanceId JobName Status ExitCode ExitMessage CreateTimestamp StartTimestamp
                                    EndTimestamp CurrentStep Progress Node'
        local opts_global='--help --version --user --system --json --json=short --json=pretty --json=off
                           --no-pager --no-legend --quiet --full'
        local opts_arg='--limit -n --lines --iterations --base-time --directory -D --config --property -p --priority
                        --output -o --state --since --until --older-than --keep'

        # The verb, for the options whose letter means something else to another verb (-p, -n).
        local i verb='' verb_index=0 w
        for ((i = 1; i < cword; i++)); do
                w=${words[i]}
                if [[ $w == --* || ( $w == -? ) ]]; then
                        [[ " $opts_arg " == *" $w "* ]] && ((i++))
                        continue
                fi
                verb=$w
                verb_index=$i
                break
        done

        # The argument of an option.
        case $prev in
                --priority)
                        COMPREPLY=($(compgen -W 'emerg alert crit err warning notice info debug' -- "$cur"))
                        return 0
                        ;;
                -p)
                        if [[ $verb == logs ]]; then
                                COMPREPLY=($(compgen -W 'emerg alert crit err warning notice info debug' -- "$cur"))
                        else
                                COMPREPLY=($(compgen -W "$job_properties $execution_properties" -- "$cur"))
                        fi
                        return 0
                        ;;
                --output|-o)
                        COMPREPLY=($(compgen -W 'short cat json' -- "$cur"))
                        return 0
                        ;;
                --state)
                        COMPREPLY=($(compgen -W 'STARTING STARTED STOPPING STOPPED FAILED COMPLETED ABANDONED UNKNOWN' -- "$cur"))
                        return 0
                        ;;
                --since|--until)
                        COMPREPLY=($(compgen -W 'now @0' -- "$cur"))
                        return 0
                        ;;
                --older-than)
                        COMPREPLY=($(compgen -W '30d 12h 1w' -- "$cur"))
                        return 0
                        ;;
                --limit|-n|--lines|--iterations|--keep)
                        COMPREPLY=()
                        return 0
                        ;;
                --base-time)
                        COMPREPLY=($(compgen -W '@0 now' -- "$cur"))
                        return 0
                        ;;
                --directory|-D)
                        COMPREPLY=($(compgen -d -- "$cur"))
                        return 0
                        ;;
                --config)
                        COMPREPLY=($(compgen -f -- "$cur"))
                        return 0
                        ;;
                --property)
                        COMPREPLY=($(compgen -W "$job_properties $execution_properties" -- "$cur"))
                        return 0
                        ;;
        esac

        if [[ -z $verb ]]; then
                if [[ $cur == -* ]]; then
                        COMPREPLY=($(compgen -W "$opts_global" -- "$cur"))
                else
                        COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
                fi
                return 0
        fi

        if [[ $verb == step ]]; then
                if ((cword == verb_index + 1)); then
                        COMPREPLY=($(compgen -W "$step_verbs --help" -- "$cur"))
                elif [[ $cur == -* ]]; then
                        case ${words[verb_index+1]} in
                                get|put) COMPREPLY=($(compgen -W '--job' -- "$cur")) ;;
                                commit) COMPREPLY=($(compgen -W '--read --write --filter --read-skip --write-skip --process-skip' -- "$cur")) ;;
                        esac
                fi
                return 0
        fi

        local verb_opts=''
        case $verb in
                start|next|restart) verb_opts='--wait' ;;
                status) verb_opts='--limit' ;;
                list-executions) verb_opts='--limit --state --since --until' ;;
                logs) verb_opts='--follow --directory --lines --priority --since --until --output' ;;
                list-timers) verb_opts='--all' ;;
                purge) verb_opts='--older-than --keep --dry-run' ;;
                calendar) verb_opts='--iterations --base-time' ;;
                verify) verb_opts='--config' ;;
                show) verb_opts='--property' ;;
        esac
        if [[ $cur == --* ]]; then
                COMPREPLY=($(compgen -W "$opts_global $verb_opts" -- "$cur"))
                return 0
        fi

        # How many arguments the verb has already.
        local n_args=0
        for ((i = verb_index + 1; i < cword; i++)); do
                w=${words[i]}
                if [[ $w == --* || $w == -? ]]; then
                        [[ " $opts_arg " == *" $w "* ]] && ((i++))
                        continue
                fi
                ((n_args++))
        done

        case $verb in
                start|next)
                        # The job; parameters after it are free text.
                        ((n_args == 0)) && COMPREPLY=($(compgen -W "$(__batchctl_jobs)" -- "$cur"))
                        ;;
                status|cat|enable|disable|revert)
                        COMPREPLY=($(compgen -W "$(__batchctl_jobs)" -- "$cur"))
                        ;;
                list-executions|purge)
                        ((n_args == 0)) && COMPREPLY=($(compgen -W "$(__batchctl_jobs)" -- "$cur"))
                        ;;
                stop)
                        ((n_args == 0)) && COMPREPLY=($(compgen -W "$(__batchctl_executions 'STARTING|STARTED|STOPPING')" -- "$cur"))
                        ;;
                restart|abandon)
                        ((n_args == 0)) && COMPREPLY=($(compgen -W "$(__batchctl_executions 'FAILED|STOPPED|UNKNOWN')" -- "$cur"))
                        ;;
                show)
                        ((n_args == 0)) && COMPREPLY=($(compgen -W "$(__batchctl_executions) $(__batchctl_jobs)" -- "$cur"))
                        ;;
                logs)
                        ((n_args == 0)) && COMPREPLY=($(compgen -W "$(__batchctl_executions) $(__batchctl_jobs)" -- "$cur"))
                        ;;
                verify)
                        COMPREPLY=($(compgen -f -- "$cur"))
                        ;;
                help)
                        ((n_args == 0)) && COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
                        ;;
        esac
        return 0
}

complete -F _batchctl batchctl
