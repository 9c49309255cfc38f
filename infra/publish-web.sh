#!/usr/bin/env bash
# Publishes the web app to a deployed stack: builds it, writes its config.json from the stack's
# outputs (API URL, OIDC issuer and client, redirect URI), uploads it and refreshes CloudFront.
# Usage: infra/publish-web.sh [STACK_NAME]   (default: entryguard; needs the AWS CLI)
# With a custom AllowedOrigin, set ORIGIN to it (e.g. ORIGIN=https://entryguard.example.com).
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-entryguard}"

output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

api_url=$(output ApiUrl)
web_url=$(output WebUrl)
issuer=$(output OidcIssuer)
client_id=$(output WebClientId)
bucket=$(output WebBucketName)
distribution=$(output WebDistributionId)
for v in api_url web_url issuer client_id bucket distribution; do
  if [ -z "${!v}" ] || [ "${!v}" = "None" ]; then
    echo "stack $stack has no output for $v; deploy infra/template.yaml first" >&2
    exit 1
  fi
done

origin="${ORIGIN:-$web_url}"

(cd web && npm ci && npm run build)
# The outputs are URLs and ids AWS generated: nothing in them needs JSON escaping.
cat > web/dist/config.json <<JSON
{
  "apiBaseUrl": "$api_url",
  "auth": {
    "mode": "oidc",
    "issuer": "$issuer",
    "clientId": "$client_id",
    "redirectUri": "$origin/"
  }
}
JSON
aws s3 sync web/dist "s3://$bucket" --delete
# The config must never be cached: a redeploy may change it.
aws s3 cp web/dist/config.json "s3://$bucket/config.json" \
  --cache-control "no-store" --content-type application/json
aws cloudfront create-invalidation --distribution-id "$distribution" --paths '/*' >/dev/null
echo "published to $origin"
