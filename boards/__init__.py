"""Board tops, the host <-> board UART protocol, synthesis and the host driver.

protocol.py   frame format, CRC-8, encode/decode (shared by host, RTL and cocotb; docs/protocol.md)
uart.py       8N1 UART receiver / transmitter (Amaranth)
framer.py     deframer (UART bytes -> accelerator features) and framer (answers -> UART bytes)
top.py        UARTAccelerator: UART + framing + accelerator, platform independent
platforms.py  iCEBreaker, ULX3S (25F), OrangeCrab (25F), bare --device platforms; BoardTop
synth.py      amaranth-boards build with the YoWASP tools, nextpnr report parsing, misfit advice
resources.py  what a design needs (DSPs, block RAMs exactly, logic estimated) before synthesis,
              the check against the device (platforms.DEVICES), the roofline floors
cocotb_board.py  board-level cocotb simulation driven bit by bit on the rx pin
standin.py    a tiny accelerator stand-in with the same ports (tests, UART bring-up)
host.py       serial driver for `python -m sparknet_hw run` (features: sparknet_hw/clips.py)
"""
