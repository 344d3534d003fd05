#!/usr/bin/env bash
# The application journey of the guide with curl, against a running `make up` (or any stack:
# FLEXENROLL_STACK names its file, deploy/local/README.md, "Stacks"):
# register with an SMS code → log in → verify → read the notice → apply → upload → submit → a
# reviewer approves → the SMS → the status → the agency notice (劳动事务代理人员须知) → the
# registration form PDF. Needs identity, enrollment, review and notify.
# Usage: deploy/local/journey.sh   (prints each step; leaves registration-form.pdf in the run dir)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=deploy/local/stack.sh
. deploy/local/stack.sh
stack_load "$ROOT"
ID="http://127.0.0.1:$IDENTITY_PORT" EN="http://127.0.0.1:$ENROLLMENT_PORT"
RV="http://127.0.0.1:$REVIEW_PORT"
PY=.venv/bin/python
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -sf "$1" -H 'content-type: application/json' "${@:3}" -d "$2"; }
step() { printf '\n== %s\n' "$*"; }

# The one-time code texted to +86$1, read where the local stand-ins for the phone keep it: notify's
# sms_sink (identity sends codes through notify), else identity's code_sink (IDENTITY_CODE_SENDER=
# local_sink); each read as that service's own role, with its shipped development password.
texted_code() {
  DATABASE_URL="$DATABASE_URL" "$PY" - "+86$1" <<'PYTHON'
import asyncio, os, re, sys
import asyncpg
from kernel.settings import local_secret

async def code() -> str:
    for service, table in (("notify", "sms_sink"), ("identity", "code_sink")):
        conn = await asyncpg.connect(os.environ["DATABASE_URL"], user=service, password=local_secret("db", service))
        try:
            text = await conn.fetchval(
                f"SELECT text FROM {service}.{table} WHERE phone = $1 AND template = 'one_time_code' "
                "ORDER BY id DESC LIMIT 1", sys.argv[1])
        except asyncpg.UndefinedTableError:
            text = None
        finally:
            await conn.close()
        if found := re.search(r"验证码为(\d{6})", text or ""):
            return found.group(1)
    return ""

print(asyncio.run(code()))
PYTHON
}

PHONE="139$(printf '%08d' $((RANDOM * RANDOM % 100000000)))"
# a valid resident ID number for a woman born 1990-05-20 in 天宁区 (check character by python-stdnum)
IDNO=$($PY -c "from stdnum.cn import ric; b='32040219900520$(printf '%03d' $((RANDOM % 500 * 2)))'; print(b + ric.calc_check_digit(b + '0'))")

step "register with the code texted to the phone, and log in (用户注册)"
post "$ID/v1/phone-codes" "{\"phone\": \"$PHONE\", \"purpose\": \"register\"}" >/dev/null
CODE=""
for _ in $(seq 50); do # notify's sender texts it within moments
  CODE=$(texted_code "$PHONE") && [ -n "$CODE" ] && break
  sleep 0.2
done
[ -n "$CODE" ] || { echo "no code was texted to $PHONE" >&2; exit 1; }
echo "code texted to $PHONE"
USER_ID=$(post "$ID/v1/users" "{\"phone\": \"$PHONE\", \"password\": \"s3cret-pass\", \"code\": \"$CODE\"}" | json '["user_id"]')
TOKEN=$(post "$ID/v1/sessions" "{\"phone\": \"$PHONE\", \"password\": \"s3cret-pass\"}" | json '["access_token"]')
AUTH="authorization: Bearer $TOKEN"
echo "user $USER_ID"

step "real-name verification (实名认证)"
post "$ID/v1/users/$USER_ID/verification" "{\"name\": \"陈静\", \"id_number\": \"$IDNO\"}" -H "$AUTH"; echo

step "read the notice (参保登记须知) and apply: pension tier 3, medical tier 5"
NOTICE=$(curl -sf "$EN/v1/notice" | json '["version"]')
BODY="{\"notice_version\": \"$NOTICE\", \"pension_tier\": 3, \"medical_tier\": 5, \"household_kind\": \"changzhou\",
       \"household_region_code\": \"320402\", \"residence_district_code\": \"320402\"}"
APP=""
for _ in $(seq 50); do # enrollment learns of the verification through Kafka (503 verification_pending until then)
  APP=$(post "$EN/v1/applications" "$BODY" -H "$AUTH" 2>/dev/null | json '["application_id"]') && break
  sleep 0.2
done
[ -n "$APP" ] || { echo "enrollment did not take the application" >&2; exit 1; }
echo "application $APP"

step "upload ID card front and back, household register first and own page"
# enrollment decodes every image: a real PNG, drawn with Pillow
PAGE="$(mktemp --suffix .png)"
trap 'rm -f "$PAGE"' EXIT
"$PY" -c "import sys; from PIL import Image; Image.new('RGB', (64, 48), (40, 40, 180)).save(sys.argv[1])" "$PAGE"
for kind in id_card_front id_card_back hukou_first_page hukou_own_page; do
  curl -sf -X PUT "$EN/v1/applications/$APP/documents/$kind" -H "$AUTH" -F "file=@$PAGE" >/dev/null
  echo "uploaded $kind"
done

step "submit (提交申报)"
curl -sf -X POST "$EN/v1/applications/$APP/submit" -H "$AUTH" | json '["status"]'

step "a reviewer decides (审核通过); reviewers are created by an operator"
REVIEWER="137$(printf '%08d' $((RANDOM * RANDOM % 100000000)))"
# staff are linked to their own resident ID number (a man born 1980 in 新北区 here), so that review
# refuses them a case of their own (403 own_case); the password comes on stdin, never in argv.
# flexctl reads the same stack file (FLEXENROLL_STACK).
STAFF_IDNO=$($PY -c "from stdnum.cn import ric; b='32041119800101$(printf '%03d' $((RANDOM % 500 * 2 + 1)))'; print(b + ric.calc_check_digit(b + '0'))")
echo s3cret-pass | .venv/bin/flexctl staff add --phone "$REVIEWER" --name 李审核 --id-number "$STAFF_IDNO" \
  --password-stdin --role reviewer
RTOKEN=$(post "$ID/v1/sessions" "{\"phone\": \"$REVIEWER\", \"password\": \"s3cret-pass\"}" | json '["access_token"]')
CASE=""
for _ in $(seq 50); do # review opens the case when the submission reaches it through Kafka
  CASE=$(curl -sf "$RV/v1/cases?status=pending&application_id=$APP" -H "authorization: Bearer $RTOKEN" |
    python3 -c "import json, sys; print(next((c['case_id'] for c in json.load(sys.stdin)['cases']), ''))")
  [ -n "$CASE" ] && break
  sleep 0.2
done
[ -n "$CASE" ] || { echo "review opened no case for application $APP" >&2; exit 1; }
post "$RV/v1/cases/$CASE/decision" '{"decision": "approved"}' -H "authorization: Bearer $RTOKEN" | json '["decision"]'

step "the status (approved, SMS sent)"
for _ in $(seq 50); do
  STATUS=$(curl -sf "$EN/v1/applications/$APP" -H "$AUTH")
  [ "$(echo "$STATUS" | json '["notified"]')" = True ] && break
  sleep 0.2
done
echo "$STATUS" | json '["status"]'
echo "$STATUS" | python3 -c "import json,sys; [print(' ', t['at'][:19], t['label']) for t in json.load(sys.stdin)['timeline']]"

step "after approval: read and accept the labour-affairs agency notice (劳动事务代理人员须知), then the form"
AGENCY_NOTICE=$(curl -sf "$EN/v1/agency-notice" | json '["version"]')
post "$EN/v1/applications/$APP/agency-notice" "{\"version\": \"$AGENCY_NOTICE\"}" -H "$AUTH" | json '["agency_notice_accepted_at"]'
FORM="$FLEXENROLL_RUN_DIR/registration-form.pdf"
mkdir -p "$FLEXENROLL_RUN_DIR"
curl -sf "$EN/v1/applications/$APP/registration-form.pdf" -H "$AUTH" -o "$FORM"
echo "$FORM: $(wc -c <"$FORM") bytes"
