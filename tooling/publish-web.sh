#!/usr/bin/env bash
# Publish the reader's page (web/) to its S3 bucket and refresh CloudFront's copy.
#   tooling/publish-web.sh ENV          (tooling/deploy-images.sh ENV runs it after the services)
# The bucket and the distribution come from `terraform output` of infrastructure/environments/ENV.
# The layout follows routes.json's static rule ("static": "web", patterns "/" and "/web/*"): the URL
# /web/<file> is the key web/<file>, and / is the key index.html (CloudFront's default root object).
# Cache headers: index.html `no-cache` (every visit revalidates, so a publish shows at once);
# content-hashed names (app.3f9a1c2b.js) a year, immutable; other files 5 minutes, and then
# /web/* is invalidated with / and /index.html. /web/config.json (where the page signs in: the user
# pool's endpoint and app client, from the outputs) is written no-cache.
# Environment: WEB_DIR (default: the rule's folder), TF_STATE (a state file to read the outputs from,
# e.g. the emulator's), AWS_ENDPOINT_URL (the emulator; the aws CLI honours it).
# Needs: aws CLI, terraform, jq.
set -euo pipefail
env_name="${1:?usage: tooling/publish-web.sh ENV (e.g. dev)}"
root="$(cd "$(dirname "$0")/.." && pwd)"
tfdir="$root/infrastructure/environments/$env_name"
routes="$root/infrastructure/definitions/routes.json"
[ -d "$tfdir" ] || { echo "no environment $tfdir" >&2; exit 2; }
for tool in aws terraform jq; do command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }; done

state_args=()
[ -z "${TF_STATE:-}" ] || state_args=("-state=$TF_STATE")
outputs="$(terraform -chdir="$tfdir" output -json "${state_args[@]}")"
bucket="$(jq -r '.web_bucket.value // empty' <<<"$outputs")"
distribution="$(jq -r '.web_distribution_id.value // empty' <<<"$outputs")"
if [ -z "$bucket" ] || [ -z "$distribution" ]; then
  echo "$env_name has no page (outputs web_bucket, web_distribution_id)" >&2
  exit 2
fi

# The static rule's folder, its files' URL prefix (/web/*) and its index paths (/); the page's
# defaults where routes.json has no static rule.
folder="$(jq -r '[.rules[] | select(.static) | .static][0] // "web"' "$routes")"
prefix="$(jq -r '[.rules[] | select(.static) | .path_patterns[] | select(endswith("/*"))][0] // "/web/*"' "$routes")"
prefix="${prefix#/}"; prefix="${prefix%\*}"
mapfile -t index_paths < <(jq -r '[.rules[] | select(.static) | .path_patterns[] | select(endswith("/"))] | if length == 0 then ["/"] else . end | .[]' "$routes")
web_dir="${WEB_DIR:-$root/$folder}"
[ -f "$web_dir/index.html" ] || { echo "no $web_dir/index.html to publish" >&2; exit 2; }

# What the page serves, by extension, as the local ALB does (tooling/bookrec_local/haproxy.py): any
# other file of the folder (its README, the screenshots) is not published.
content_type() {
  case "${1,,}" in
    *.html) echo "text/html; charset=utf-8" ;;
    *.js | *.mjs) echo "text/javascript; charset=utf-8" ;;
    *.css) echo "text/css; charset=utf-8" ;;
    *.json) echo "application/json" ;;
    *.svg) echo "image/svg+xml" ;;
    *.txt) echo "text/plain; charset=utf-8" ;;
    *.woff2) echo "font/woff2" ;;
    *) echo "" ;;
  esac
}

readonly NO_CACHE="no-cache"
readonly IMMUTABLE="public, max-age=31536000, immutable"
readonly SHORT="public, max-age=300"

cache_control() {
  local name="${1##*/}"
  if [[ "$name" == index.html ]]; then
    echo "$NO_CACHE"
  elif [[ "$name" =~ [.-][0-9a-fA-F]{8,}\.[A-Za-z0-9]+$ ]]; then
    echo "$IMMUTABLE"
  else
    echo "$SHORT"
  fi
}

# One sync per (content type, cache header) group: sync uploads only what changed, with its headers.
declare -A groups=()
unhashed=0
skipped=(--exclude '.*' --exclude '*/.*' --exclude config.json)
while IFS= read -r -d '' file; do
  relative="${file#"$web_dir"/}"
  type="$(content_type "$relative")"
  if [ -z "$type" ]; then
    skipped+=(--exclude "$relative")
    continue
  fi
  cache="$(cache_control "$relative")"
  [ "$cache" != "$SHORT" ] || unhashed=1
  key="$type|$cache"
  groups["$key"]+="$relative"$'\n'
done < <(find "$web_dir" -type f ! -path '*/.*' -print0 | sort -z)

for key in "${!groups[@]}"; do
  includes=()
  while IFS= read -r relative; do
    [ -z "$relative" ] || includes+=(--include "$relative")
  done <<<"${groups[$key]}"
  aws s3 sync "$web_dir" "s3://$bucket/$prefix" --only-show-errors --exclude '*' "${includes[@]}" \
    --content-type "${key%%|*}" --cache-control "${key#*|}"
done

# The entry point last, so it never names an asset not yet uploaded.
for path in "${index_paths[@]}"; do
  aws s3 cp "$web_dir/index.html" "s3://$bucket/${path#/}index.html" --only-show-errors \
    --content-type "text/html; charset=utf-8" --cache-control "$NO_CACHE"
done

# Files no longer in the folder go (the bucket keeps their old versions for the rollback window);
# everything published was uploaded above with its headers, so --size-only uploads nothing here, and
# what is not published (hidden files, other extensions, config.json: written below) is left out.
aws s3 sync "$web_dir" "s3://$bucket/$prefix" --only-show-errors --delete --size-only "${skipped[@]}"

# Where the page signs in (/web/config.json, as the local stack writes it): the user pool's own endpoint.
client_id="$(jq -r '.user_pool_client_id.value // empty' <<<"$outputs")"
issuer="$(jq -r '.jwt_issuer.value // empty' <<<"$outputs")"
if [ -n "$client_id" ] && [ -n "$issuer" ]; then
  jq -n --arg endpoint "${issuer%/*}/" --arg client "$client_id" \
    '{auth: {endpoint: $endpoint, client_id: $client, flow: "USER_PASSWORD_AUTH"}}' |
    aws s3 cp - "s3://$bucket/${prefix}config.json" --only-show-errors \
      --content-type "application/json" --cache-control "$NO_CACHE"
fi

invalidate=()
for path in "${index_paths[@]}"; do invalidate+=("$path" "${path}index.html"); done
[ "$unhashed" = 0 ] && [ -z "$client_id" ] || invalidate+=("/$prefix*")
aws cloudfront create-invalidation --distribution-id "$distribution" --paths "${invalidate[@]}" \
  --query 'Invalidation.Id' --output text
echo "published $web_dir to s3://$bucket/ (${#groups[@]} groups); invalidated ${invalidate[*]} on $distribution"
