#!/usr/bin/env bash
# Regenerates the app icons from nothing but ImageMagick drawing primitives:
# a rounded indigo square with a white house outline and a light "model" dot.
# Tauri needs RGBA PNGs (PNG32:), otherwise generate_context!() panics.
set -euo pipefail
cd "$(dirname "$0")"
master=$(mktemp --suffix=.png)
trap 'rm -f "$master"' EXIT
convert -size 1024x1024 xc:none \
  \( -size 1024x1024 gradient:'#4f46e5-#1e1b4b' \) \
  \( -size 1024x1024 xc:none -fill white -draw "roundrectangle 48,48 975,975 220,220" \) \
  -delete 0 -compose DstIn -composite -compose Over \
  -fill none -stroke white -strokewidth 64 \
  -draw "stroke-linejoin round stroke-linecap round polyline 262,512 512,296 762,512" \
  -draw "stroke-linejoin round stroke-linecap round polyline 346,440 346,748 678,748 678,440" \
  -stroke none -fill '#a5b4fc' -draw "circle 512,590 512,530" \
  "PNG32:$master"
convert "$master" -resize 512x512 PNG32:icon.png
convert "$master" -resize 32x32 PNG32:32x32.png
convert "$master" -resize 128x128 PNG32:128x128.png
convert "$master" -resize 256x256 PNG32:128x128@2x.png
# icon.icns (macOS) and icon.ico (Windows): Tauri's own icon command writes
# both; without it (ui/ not installed) ImageMagick can still make the .ico.
tauri=../ui/node_modules/.bin/tauri
if [[ -x $tauri ]]; then
  out=$(mktemp -d)
  (cd ../src-tauri && "../ui/node_modules/.bin/tauri" icon "$master" -o "$out" >/dev/null 2>&1)
  cp "$out/icon.icns" "$out/icon.ico" .
  rm -rf "$out"
else
  echo "ui/node_modules missing: icon.icns not rebuilt (run: cd ui && npm ci)" >&2
  convert "$master" -define icon:auto-resize=256,128,64,48,32,16 icon.ico
fi
echo "icons written to $(pwd)"
