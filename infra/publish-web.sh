#!/usr/bin/env bash
# Publishes the web app to a deployed stack: builds it, writes its config.json from the stack's
# outputs (API URL, OIDC issuer and client, redirect URI, the address probe hosts if the stack has
# them), uploads it and refreshes CloudFront.
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
sign_in=$(output SignInDomain)
for v in api_url web_url issuer client_id bucket distribution sign_in; do
  if [ -z "${!v}" ] || [ "${!v}" = "None" ]; then
    echo "stack $stack has no output for $v; deploy infra/template.yaml first" >&2
    exit 1
  fi
done

origin="${ORIGIN:-$web_url}"

# The address probe hosts are optional outputs (Ipv4ProbeDomain, Ipv6ProbeDomain): a missing one
# reads as empty (or "None"), and the web app then does without that family's probe.
probe_v4=$(output Ipv4ProbeUrl)
probe_v6=$(output Ipv6ProbeUrl)
probes=""
probe_origins=""
for family in v4 v6; do
  var="probe_$family"
  url="${!var}"
  if [ -n "$url" ] && [ "$url" != "None" ]; then
    probes="$probes${probes:+, }\"$family\": \"$url\""
    probe_origins="$probe_origins $url"
  fi
done

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
  },
  "addressProbes": {$probes}
}
JSON
# CloudFront's policy names the API only by its region's execute-api domain (the template
# explains why); this second policy, which the browser enforces as well, narrows connect-src to
# this stack's API, its address probe hosts and the sign-in service. Everything else comes from
# CloudFront's headers (frame-ancestors cannot be set from a <meta>).
issuer_origin=$(printf '%s' "$issuer" | sed -E 's#^(https://[^/]+).*#\1#')
csp="connect-src 'self' $api_url$probe_origins $issuer_origin $sign_in"
sed -i "s#<head>#<head><meta http-equiv=\"Content-Security-Policy\" content=\"$csp\">#" web/dist/index.html
grep -q 'http-equiv="Content-Security-Policy"' web/dist/index.html \
  || { echo "could not add the CSP to web/dist/index.html" >&2; exit 1; }
aws s3 sync web/dist "s3://$bucket" --delete
# The config must never be cached: a redeploy may change it.
aws s3 cp web/dist/config.json "s3://$bucket/config.json" \
  --cache-control "no-store" --content-type application/json
aws cloudfront create-invalidation --distribution-id "$distribution" --paths '/*' >/dev/null
echo "published to $origin (address probes: {$probes})"
