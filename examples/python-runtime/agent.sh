#!/bin/sh
# A stand-in agent: reads its prompt, says what it does (each line becomes a message event),
# moves its issue to done through vik-host, and exits 0 (the runtime reports a completed session).
cat > /dev/null
echo "working on $VIK_ISSUE_ID"
"$VIK_HOST_BIN" issue set-state "$VIK_ISSUE_ID" done > /dev/null
echo "moved $VIK_ISSUE_ID to done"
