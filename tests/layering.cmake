# Code layout: no file includes across the layering rule (docs/code-layout.md).
lv_script_test(layering layering.sh unit)
