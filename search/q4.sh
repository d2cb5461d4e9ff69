# queue 4 (core 1, after queue 3): lambda 0.1, 40 epochs, a smaller fine-tuning step
while pgrep -f "bash search/q3.sh" > /dev/null; do sleep 10; done
set -x
T="taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python search/tune.py"
$T finetune --tag f_l0.1e40--b20lr0.1 --init search/weights/p_l0.1_lr0.05_e40.npz --lr 0.1
