"""`build`: export -> Verilog -> cocotb verification -> bitstream -> report (sparknet_hw/pipeline/)."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "build", help="export, generate, verify and synthesize the accelerator for a board",
        description="The whole flow for one width: the integer export, the accelerator "
                    "Verilog and the board design (UART + framing), cocotb verification "
                    "against the golden model on real clips, synthesis + place and route + "
                    "bitstream (YoWASP), and report.json / report.md / plots in the build "
                    "directory.")
    p.add_argument("--C", type=int, default=8, help="network width: 4, 8, 16 or 32 (default 8)")
    p.add_argument("--board", default=None,
                   help="icebreaker (default), ulx3s or orangecrab")
    p.add_argument("--device", default=None,
                   help="a bare chip instead of a board, PART-PACKAGE: e.g. up5k-sg48, "
                        "hx8k-ct256, 25k-cabga256, 85k-cabga381")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="clock of a --device build (default 12 MHz iCE40, 25 MHz ECP5)")
    p.add_argument("--pll-mhz", type=float, default=None,
                   help="run the design from the FPGA's PLL at this clock (the highest the PLL "
                        "makes at or below it) instead of the board oscillator; `build` "
                        "prints the clock the design closes timing at")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="fixed-point (QAT) checkpoint to export (default: the shipped export)")
    p.add_argument("--export", type=Path, default=None, help="an export file to build")
    p.add_argument("--out", type=Path, default=None,
                   help="build directory (default build/sparknet_C{N}_{board})")
    p.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator",
                   help="cocotb simulator for verification (default verilator)")
    p.add_argument("--inputs", type=Path, default=None,
                   help=".npy of N x 32 x 101 features to verify on (default: the shipped "
                        "real test clips)")
    p.add_argument("--clips", type=int, default=None, help="verify on the first N clips only")
    p.add_argument("--pes", type=int, default=None,
                   help="PE lanes (power of two <= 16; default 4 on iCE40, 2 for C = 16, and 16 "
                        "on ECP5)")
    skip = p.add_mutually_exclusive_group()
    skip.add_argument("--skip", dest="zero_skip", nargs="?", const="all", default=None,
                      choices=["all", "1x1", "off"], metavar="all|1x1|off",
                      help="zero skipping: all (1x1 layers and the depthwise, see "
                           "--depthwise), 1x1 (pointwise, residual and head only: most of the "
                           "cycles, less logic) "
                           "or off; --skip alone means all (default: all on ECP5, 1x1 on the "
                           "iCEBreaker)")
    skip.add_argument("--no-skip", dest="zero_skip", action="store_const", const="off",
                      help="the same as --skip off")
    p.add_argument("--rom-style", choices=["auto", "block"], default=None,
                   help="where the classifier columns and biases/shifts go: auto (synthesis "
                        "chooses; LUTs on the iCE40) or block (block RAM); default block on "
                        "the iCE40, auto on the ECP5")
    p.add_argument("--depthwise", choices=["frames", "channels"], default=None,
                   help="dataflow of the block 2..4 depthwise with --skip all: frames (lanes "
                        "are consecutive frames of a channel, every zero input skipped; more "
                        "logic and weight memory) or channels (only all-zero words skipped); "
                        "default frames, channels for C = 32 on ECP5")
    p.add_argument("--classifier-adders", type=int, default=None, choices=[1, 2, 3, 4, 6, 12],
                   metavar="N", help="classes the classifier adds per cycle: 12 (one cycle per "
                                     "open gate) or 1, 2, 3, 4, 6 (12 / N cycles per open gate, "
                                     "less logic); default 12, 2 on the iCEBreaker")
    p.add_argument("--accumulators", choices=["fabric", "dsp"], default=None,
                   help="where the PE lanes accumulate: fabric (default: an adder in logic "
                        "behind each SB_MAC16 product) or dsp (two SB_MAC16 per lane, their "
                        "accumulators taking turns; iCE40 UltraPlus only, docs/accelerator.md)")
    p.add_argument("--baud", type=int, default=115200, help="UART baud rate (default 115200)")
    p.add_argument("--seed", type=int, default=None, help="simulation seed")
    p.add_argument("--place-seed", type=int, default=None, metavar="N",
                   help="nextpnr placement seed: Fmax moves by about 1 MHz from one placement "
                        "of the same netlist to another (default: nextpnr's own)")
    p.add_argument("--no-synth", action="store_true", help="stop after verification")
    p.add_argument("--force", action="store_true", help="replace an existing build directory")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..pipeline import BuildOptions, run_build

    opts = BuildOptions(C=args.C, board=args.board, device=args.device,
                        clock_mhz=args.clock_mhz, pll_mhz=args.pll_mhz,
                        checkpoint=args.checkpoint,
                        export=args.export, out=args.out, simulator=args.simulator,
                        inputs=args.inputs, clips=args.clips, synth=not args.no_synth,
                        force=args.force, baud=args.baud, pes=args.pes,
                        zero_skip=args.zero_skip, rom_style=args.rom_style,
                        depthwise=args.depthwise, classifier_adders=args.classifier_adders,
                        accumulators=args.accumulators, seed=args.seed,
                        place_seed=args.place_seed)
    report = run_build(opts).report
    return 0 if report["mismatches"] == 0 else 1
