#!/usr/bin/env bash
# Trains shared/tessdata/mrz.traineddata: a Tesseract model (the legacy,
# shape-based engine) for the characters of a passport's machine-readable
# zone (A-Z, 0-9, <) in the OCR-B typeface, from Debian's fonts-ocr-b with
# the training tools of Debian's tesseract-ocr.
#
#   scripts/train-mrz-ocr.sh [OUTPUT]   (default shared/tessdata/mrz.traineddata)
#
# Needs the venv (make venv: numpy, OpenCV) and the Debian packages
# tesseract-ocr and fonts-ocr-b. About 3 minutes on 2 cores.
#
# The text is random zone-like lines (scripts/mrz_training_text.py), never
# the zones of the test pages. text2image renders it twice over: as print
# (capitals about 36 pixels high, its own speckle and skew) and small, as a
# phone camera sees a zone (capitals 12-18 pixels high), which
# scripts/mrz_training_images.py then blurs, lights unevenly and scales up
# as the camera and the reader do; both at three exposures (ink spread or
# thinned). Each page is boxed and its features extracted (box.train), the
# characters' prototypes clustered (mftraining, cntraining) and combined
# into one file. No shapeclustering: it merges O, 0 and D, which OCR-B
# tells apart. CAMERA_TAKES (default 2) is the number of camera-like pages
# per size and exposure (4 read no better on the validation pages).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=$(realpath -m "${1:-$root/shared/tessdata/mrz.traineddata}")
font_file=${OCR_B_FONT:-/usr/share/fonts/opentype/ocr-b/OCRB.otf}
python=${PYTHON:-$root/.venv/bin/python}
for tool in text2image tesseract unicharset_extractor mftraining cntraining combine_tessdata; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install tesseract-ocr" >&2; exit 1; }
done
[ -f "$font_file" ] || { echo "missing $font_file: apt-get install fonts-ocr-b" >&2; exit 1; }

work=$(mktemp -d -t mrz-train.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/fonts"
ln -s "$font_file" "$work/fonts/"  # only the regular cut: text2image picks by family name
cd "$work"

# The font name in the file names ("ocrb") is the one font_properties
# describes: not italic, not bold, fixed pitch, not serif, not fraktur.
echo "ocrb 0 0 1 0 0" > font_properties
# Print as text2image renders it (its own speckle, ink spread and skew),
# capitals about 36 pixels high, at three exposures...
n=0
for exposure in -1 0 1; do
  n=$((n + 1))
  "$python" "$here/mrz_training_text.py" 300 "$n" > "text$n.txt"
  text2image --fonts_dir "$work/fonts" --fontconfig_tmpdir "$work" --font "OCR B" \
    --text "text$n.txt" --outputbase "mrz.ocrb.exp$n" --ptsize 12 --leading 32 --exposure "$exposure" \
    --max_pages 3 >/dev/null 2>&1
  tesseract "mrz.ocrb.exp$n.tif" "mrz.ocrb.exp$n" box.train >/dev/null 2>&1
done
# ...and as the camera sees it: rendered small (capitals 12, 15 and 18
# pixels high), then blurred, lit unevenly and scaled up as the reader does.
for resolution in 100 125 150; do
  for exposure in -1 0 1; do
    for take in $(seq "${CAMERA_TAKES:-2}"); do
      n=$((n + 1))
      "$python" "$here/mrz_training_text.py" 80 "$n" > "text$n.txt"
      text2image --fonts_dir "$work/fonts" --fontconfig_tmpdir "$work" --font "OCR B" \
        --text "text$n.txt" --outputbase "clean$n" --ptsize 12 --resolution "$resolution" \
        --xsize $((resolution * 8)) --ysize $((resolution * 14)) --margin $((resolution / 4)) \
        --leading $((resolution / 10)) --exposure "$exposure" --degrade_image=false \
        --max_pages 1 >/dev/null 2>&1
      PYTHONPATH="$root" "$python" "$here/mrz_training_images.py" "clean$n" "mrz.ocrb.exp$n" "$n"
      tesseract "mrz.ocrb.exp$n.tif" "mrz.ocrb.exp$n" box.train >/dev/null 2>&1
    done
  done
done

unicharset_extractor ./*.box >/dev/null 2>&1
mftraining -F font_properties -U unicharset -O mrz.unicharset ./*.tr >/dev/null 2>&1
cntraining ./*.tr >/dev/null 2>&1
for part in inttemp pffmtable normproto shapetable; do mv "$part" "mrz.$part"; done
combine_tessdata mrz. >/dev/null 2>&1
mkdir -p "$(dirname "$out")"
cp mrz.traineddata "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
