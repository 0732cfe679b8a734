#!/usr/bin/env bash
# Build, tag with the git sha, push to ECR, roll out all four services, then publish the reader's page
# (web/ to its S3 bucket behind CloudFront: tooling/publish-web.sh).
#   tooling/deploy-images.sh dev
# Needs: docker (with buildx), aws CLI v2 and terraform, credentials for the target account, and an
# applied infrastructure/environments/<ENV> (its outputs name the repositories and the cluster).
set -euo pipefail
env_name="${1:?usage: tooling/deploy-images.sh ENV (e.g. dev)}"
root="$(cd "$(dirname "$0")/.." && pwd)"
tfdir="$root/infrastructure/environments/$env_name"
[ -d "$tfdir" ] || { echo "no environment $tfdir" >&2; exit 2; }
for tool in docker aws terraform jq git; do command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }; done
[ -z "$(git -C "$root" status --porcelain)" ] || { echo "uncommitted changes: deploy a commit, not a working tree" >&2; exit 2; }

sha="$(git -C "$root" rev-parse --short=12 HEAD)"
outputs="$(terraform -chdir="$tfdir" output -json)"
cluster="$(jq -r .cluster_name.value <<<"$outputs")"
region="$(aws configure get region || echo "${AWS_REGION:?set AWS_REGION}")"
registry="$(jq -r '.repository_urls.value | to_entries[0].value' <<<"$outputs" | cut -d/ -f1)"

aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry"
for service in $(jq -r '.repository_urls.value | keys[]' <<<"$outputs"); do
  repo="$(jq -r --arg s "$service" '.repository_urls.value[$s]' <<<"$outputs")"
  echo "building $service -> $repo:$sha"
  port="$(jq -r --arg s "$service" '.[$s].port' "$root/infrastructure/definitions/services.json")"
  docker build -f "$root/services/Dockerfile" --build-arg "SERVICE=$service" --build-arg "PORT=$port" \
    -t "$repo:$sha" "$root"
  docker push "$repo:$sha"
done

# New task definitions point at the pushed tag; every service (the recommender included) redeploys.
terraform -chdir="$tfdir" apply -auto-approve -var "image_tag=$sha"
for service in $(jq -r '.service_names.value[]' <<<"$outputs"); do
  aws ecs update-service --region "$region" --cluster "$cluster" --service "$service" --force-new-deployment >/dev/null
  echo "redeploying $service"
done
mapfile -t services < <(jq -r '.service_names.value[]' <<<"$outputs")
aws ecs wait services-stable --region "$region" --cluster "$cluster" --services "${services[@]}"
echo "deployed $sha to $env_name"

# The page last: it calls the API the services now serve.
"$root/tooling/publish-web.sh" "$env_name"
