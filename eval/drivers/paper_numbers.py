"""The numbers the STG paper reports (Chen et al., CVPR 2024, ../shared/papers/stg_what_when_where_cvpr.txt),
table by table and row by row, as printed: GroundingYT spatio-temporal mAP@0.4, MiningYT temporal IoU and
YouCook-Inter. pointing accuracy, all in percent; Table 12 gives mAP@0.4 per mask threshold. `make
paper-tables` prints them next to its own figures; nothing here is computed."""
from __future__ import annotations

GYT, MYT, YC = "gyt", "myt", "yc"  # the three columns of Tables 5, 6, 8 and 13

PAPER: dict[str, dict[str, dict[str, float]]] = {
    # Table 5 (Sec. 5.5): left block w/o Sinkhorn (top-k), right block with Sinkhorn; "None" has no right block
    "5": {
        "None": {GYT: 17.43, MYT: 18.34, YC: 57.42},
        "Global T - Global V / top-k": {GYT: 18.24, MYT: 19.38, YC: 56.31},
        "Global T - Local V / top-k": {GYT: 18.01, MYT: 19.31, YC: 57.56},
        "Local T - Global V / top-k": {GYT: 18.05, MYT: 19.85, YC: 57.34},
        "Local T - Local V / top-k": {GYT: 18.31, MYT: 19.48, YC: 57.86},
        "Average over last two / top-k": {GYT: 18.36, MYT: 19.68, YC: 57.77},
        "Global T - Global V / Sinkhorn": {GYT: 18.96, MYT: 19.89, YC: 57.34},
        "Global T - Local V / Sinkhorn": {GYT: 18.53, MYT: 19.35, YC: 57.67},
        "Local T - Global V / Sinkhorn": {GYT: 19.32, MYT: 20.36, YC: 58.13},
        "Local T - Local V / Sinkhorn": {GYT: 19.43, MYT: 20.16, YC: 58.51},
        "Average over last two / Sinkhorn": {GYT: 19.45, MYT: 20.33, YC: 58.35},
    },
    # Table 6 (Sec. 5.5): loss ablations
    "6": {
        "only Local loss": {GYT: 7.29, MYT: 5.23, YC: 55.29},
        "only Global loss": {GYT: 9.28, MYT: 19.12, YC: 36.23},
        "w/ Both loss": {GYT: 19.45, MYT: 20.33, YC: 58.35},
    },
    # Table 8 (appendix 9.3): the local stack's layers
    "8": {
        "Self+Cross": {GYT: 15.4, MYT: 18.7, YC: 54.1},
        "Cross+Self": {GYT: 15.9, MYT: 18.9, YC: 54.5},
        "Cross+Cross": {GYT: 16.5, MYT: 19.3, YC: 56.2},
        "Cross+Self+Cross": {GYT: 17.1, MYT: 19.9, YC: 57.1},
    },
    # Table 9 (appendix 9.3): candidate frames U (columns 60 ... 140)
    "9": {
        "60": {GYT: 16.4, YC: 56.3}, "80": {GYT: 17.1, YC: 57.1}, "100": {GYT: 17.0, YC: 56.8},
        "120": {GYT: 16.8, YC: 56.7}, "140": {GYT: 16.1, YC: 55.9},
    },
    # Table 10 (appendix 9.3): frames T used for training (columns 1 ... 24)
    "10": {
        "1": {GYT: 5.2, YC: 31.1}, "4": {GYT: 9.5, YC: 48.2}, "8": {GYT: 16.1, YC: 55.5},
        "16": {GYT: 17.1, YC: 57.1}, "24": {GYT: 16.5, YC: 56.1},
    },
    # Table 12 (appendix 9.3): GroundingYT mAP@0.4 per mask threshold tau (rows: model, backbone)
    "12": {
        "CoMMA* (S3D-word2vec)": {"0.1": 0.76, "0.05": 0.90, "0.01": 0.93, "0.005": 0.91, "0.001": 0.86},
        "Ours (S3D-word2vec)": {"0.1": 15.35, "0.05": 15.88, "0.01": 16.22, "0.005": 16.34, "0.001": 16.12},
        "CoMMA† (CLIP)": {"0.1": 0.88, "0.05": 0.92, "0.01": 0.99, "0.005": 0.94, "0.001": 0.91},
        "Ours (CLIP)": {"0.1": 15.93, "0.05": 16.33, "0.01": 17.10, "0.005": 17.05, "0.001": 16.24},
    },
    # Table 13 (appendix 9.3): the global video feature
    "13": {
        "Mean-pooling": {GYT: 18.39, MYT: 19.24, YC: 57.84},
        "[CLS]": {GYT: 19.45, MYT: 20.33, YC: 58.35},
    },
}
