set -x
R=search/run.sh
$R finetune --tag r_b10_lr0.1_c --lr 0.1 --batch 10 --epochs 30 --shuffle-seed 1
$R finetune --tag r_b10_lr0.3_c --lr 0.3 --batch 10 --epochs 30 --shuffle-seed 1
$R finetune --tag r_b10_lr1_c --lr 1.0 --batch 10 --epochs 30 --shuffle-seed 1
$R finetune --tag r_b20_lr0.05_m0.9 --lr 0.05 --momentum 0.9 --batch 20 --epochs 30 --shuffle-seed 1
$R finetune --tag r_b50_lr0.1_m0.9 --lr 0.1 --momentum 0.9 --batch 50 --epochs 30 --shuffle-seed 1
