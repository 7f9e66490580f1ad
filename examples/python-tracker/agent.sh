#!/bin/sh
# A stand-in agent: reads its prompt, moves its issue to done through vik-host (which asks the
# tracker plugin), and reports a completed turn.
cat > /dev/null
"$VIK_HOST_BIN" issue set-state "$VIK_ISSUE_ID" done > /dev/null
echo '{"kind":"completed"}'
