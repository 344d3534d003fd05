#!/usr/bin/env bash
# The application journey of the guide with curl, against a running `make up`:
# register → log in → verify → read the notice → apply → upload → submit → a reviewer
# approves → the SMS → the status → the agency notice (劳动事务代理人员须知) → the registration
# form PDF.
# Usage: deploy/local/journey.sh   (prints each step; leaves .run/registration-form.pdf)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ID=http://127.0.0.1:8001 EN=http://127.0.0.1:8002 RV=http://127.0.0.1:8003 NT=http://127.0.0.1:8005
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -sf "$1" -H 'content-type: application/json' "${@:3}" -d "$2"; }
step() { printf '\n== %s\n' "$*"; }

PHONE="139$(printf '%08d' $((RANDOM * RANDOM % 100000000)))"
# a valid resident ID number for a woman born 1990-05-20 in 天宁区 (check character by python-stdnum)
IDNO=$(.venv/bin/python -c "from stdnum.cn import ric; b='32040219900520$(printf '%03d' $((RANDOM % 500 * 2)))'; print(b + ric.calc_check_digit(b + '0'))")

step "register and log in (用户注册)"
USER_ID=$(post $ID/v1/users "{\"phone\": \"$PHONE\", \"password\": \"s3cret-pass\"}" | json '["user_id"]')
TOKEN=$(post $ID/v1/sessions "{\"phone\": \"$PHONE\", \"password\": \"s3cret-pass\"}" | json '["access_token"]')
AUTH="authorization: Bearer $TOKEN"
echo "user $USER_ID"

step "real-name verification (实名认证)"
post $ID/v1/users/$USER_ID/verification "{\"name\": \"陈静\", \"id_number\": \"$IDNO\"}" -H "$AUTH"; echo

step "read the notice (参保登记须知) and apply: pension tier 3, medical tier 5"
NOTICE=$(curl -sf $EN/v1/notice | json '["version"]')
BODY="{\"notice_version\": \"$NOTICE\", \"pension_tier\": 3, \"medical_tier\": 5, \"household_kind\": \"changzhou\",
       \"household_region_code\": \"320402\", \"residence_district_code\": \"320402\"}"
for _ in $(seq 50); do  # enrollment learns of the verification through Kafka, within moments
  APP=$(post $EN/v1/applications "$BODY" -H "$AUTH" 2>/dev/null | json '["application_id"]') && break
  sleep 0.2
done
echo "application $APP"

step "upload ID card front and back, household register first and own page"
printf '\x89PNG\r\n\x1a\n%064d' 0 > /tmp/flexenroll-page.png
for kind in id_card_front id_card_back hukou_first_page hukou_own_page; do
  curl -sf -X PUT $EN/v1/applications/$APP/documents/$kind -H "$AUTH" -F "file=@/tmp/flexenroll-page.png" >/dev/null
  echo "uploaded $kind"
done

step "submit (提交申报)"
curl -sf -X POST $EN/v1/applications/$APP/submit -H "$AUTH" | json '["status"]'

step "a reviewer decides (审核通过); reviewers are created by an operator"
REVIEWER="137$(printf '%08d' $((RANDOM * RANDOM % 100000000)))"
# staff are linked to their own resident ID number (a man born 1980 in 新北区 here), so that review
# refuses them a case of their own (403 own_case); the password comes on stdin, never in argv
STAFF_IDNO=$(.venv/bin/python -c "from stdnum.cn import ric; b='32041119800101$(printf '%03d' $((RANDOM % 500 * 2 + 1)))'; print(b + ric.calc_check_digit(b + '0'))")
echo s3cret-pass | .venv/bin/flexctl staff add --phone "$REVIEWER" --name 李审核 --id-number "$STAFF_IDNO" \
  --password-stdin --role reviewer
RTOKEN=$(post $ID/v1/sessions "{\"phone\": \"$REVIEWER\", \"password\": \"s3cret-pass\"}" | json '["access_token"]')
for _ in $(seq 50); do
  CASE=$(curl -sf "$RV/v1/cases?status=pending&limit=500" -H "authorization: Bearer $RTOKEN" | python3 -c "
import json, sys
print(next((c['case_id'] for c in json.load(sys.stdin)['cases'] if c['application_id'] == '$APP'), ''))")
  [ -n "$CASE" ] && break
  sleep 0.2
done
post $RV/v1/cases/$CASE/decision '{"decision": "approved"}' -H "authorization: Bearer $RTOKEN" | json '["decision"]'

step "the status (approved, SMS sent)"
for _ in $(seq 50); do
  STATUS=$(curl -sf $EN/v1/applications/$APP -H "$AUTH")
  [ "$(echo "$STATUS" | json '["notified"]')" = True ] && break
  sleep 0.2
done
echo "$STATUS" | json '["status"]'
echo "$STATUS" | python3 -c "import json,sys; [print(' ', t['at'][:19], t['label']) for t in json.load(sys.stdin)['timeline']]"

step "after approval: read and accept the labour-affairs agency notice (劳动事务代理人员须知), then the form"
AGENCY_NOTICE=$(curl -sf $EN/v1/agency-notice | json '["version"]')
post $EN/v1/applications/$APP/agency-notice "{\"version\": \"$AGENCY_NOTICE\"}" -H "$AUTH" | json '["agency_notice_accepted_at"]'
curl -sf $EN/v1/applications/$APP/registration-form.pdf -H "$AUTH" -o .run/registration-form.pdf
echo ".run/registration-form.pdf: $(wc -c < .run/registration-form.pdf) bytes"
