// winograd_input_transform -- V = B^T d B for one t x t tile of one channel,
// Winograd F(m x m, 3 x 3), m in {2, 4}, t = m + 2.
//
// An arithmetic unit of the WinogradSRBS layer (winoforge.hw.winograd_op), not
// the streaming layer: one whole tile per beat, no line buffer, no folding
// onto serial 1-D units.  winograd_transform_2d with B^T: 2t copies of
// winograd_transform_1d, t on the columns of d (Z = B^T d, MID_W bits), t on
// the rows of Z (V = Z B, OUT_W bits).  Shifts and adds only, no multipliers.
//
// Exactness: pass the widths of winoforge.hw.rtl.unit_parameters
// ("input_transform"): MID_W and OUT_W hold the exact ranges of Z and V for
// every IN_W-bit input tile (OUT_W = bit_growth(...).input_transform_bits), so
// every output is exact.  Arithmetic is modulo 2^width (see
// winograd_transform_1d): a narrower OUT_W wraps the extreme tiles.
//
// Handshake: valid/ready with a global stall.  LATENCY = 0: combinational
// (in_ready = out_ready); 1: output registered; 2: Z and output registered.
// A beat is accepted when in_valid && in_ready and delivered LATENCY cycles
// later, when nothing stalls, at out_valid && out_ready.  Full throughput while
// out_ready is high.
//
// Packing: element (r, c) of d at in_data[(r*t + c)*IN_W +: IN_W], element
// (a, b) of V at out_data[(a*t + b)*OUT_W +: OUT_W] (element 0 at the LSBs).

module winograd_input_transform #(
    parameter int M         = 2,   // 2 or 4
    parameter int IN_W      = 8,   // input code width
    parameter int IN_SIGNED = 1,   // 1: signed input codes, 0: unsigned
    parameter int MID_W     = 10,  // width of Z = B^T d
    parameter int OUT_W     = 10,  // width of V = B^T d B (two's complement)
    parameter int LATENCY   = 1    // 0, 1 or 2 register stages
) (
    input  logic                                   ap_clk,
    input  logic                                   ap_rst_n,
    input  logic                                   in_valid,
    output logic                                   in_ready,
    input  logic [(M + 2) * (M + 2) * IN_W - 1:0]  in_data,
    output logic                                   out_valid,
    input  logic                                   out_ready,
    output logic [(M + 2) * (M + 2) * OUT_W - 1:0] out_data
);
    winograd_transform_2d #(
        .M(M), .KIND(0), .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .MID_W(MID_W), .OUT_W(OUT_W), .LATENCY(LATENCY)
    ) u_2d (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
        .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data)
    );
endmodule
