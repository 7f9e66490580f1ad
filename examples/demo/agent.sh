#!/bin/sh
# A stand-in coding agent for the demo. It reads the prompt from stdin, writes a file named after
# its stage into the issue workspace, moves the issue on through the tracker, and reports what it
# did as vik-host session events (one JSON object per line on stdout).
set -e
prompt=$(cat)
stage=$VIK_ISSUE_STAGE
case "$stage" in
  plan) next=review ;;
  review) next=done ;;
  *) next=done ;;
esac
printf '{"kind":"session_started","session_id":"demo-%s-%s"}\n' "$VIK_ISSUE_ID" "$stage"
printf '{"kind":"tool_call","call_id":"call_1","name":"write_file","phase":"request","input":{"path":"%s.md"}}\n' "$stage"
printf '%s\n' "$prompt" > "$stage.md"
printf '{"kind":"tool_call","call_id":"call_1","name":"write_file","phase":"result","output":"wrote %s.md"}\n' "$stage"
sleep 0.2
"$VIK_HOST_BIN" issue set-state "$VIK_ISSUE_ID" "$next" > /dev/null
printf '{"kind":"message","text":"%s done; issue moved to %s"}\n' "$stage" "$next"
printf '{"kind":"token_usage","input":1200,"output":340,"cache_read":800}\n'
printf '{"kind":"completed"}\n'
