// winograd_transform_2d -- the 2-D Winograd transform of one tile, shared by
// winograd_input_transform (KIND 0: V = B^T d B, t x t -> t x t) and
// winograd_output_transform (KIND 1: Y = A^T M A, t x t -> m x m);
// F(m x m, 3 x 3), m in {2, 4}, t = m + 2.
//
// t copies of winograd_transform_1d on the columns of the input (Z = X^T in,
// R x t, MID_W bits, R = t for B^T and m for A^T), then R copies on the rows of
// Z (out = Z X, R x R, OUT_W bits).  Shifts and adds only.  Arithmetic is
// modulo 2^width (winograd_transform_1d): the wrappers document which widths
// make the result exact.
//
// Handshake: valid/ready with a global stall.  LATENCY = 0: combinational
// (in_ready = out_ready); 1: output registered; 2: Z and output registered.
// A beat is accepted when in_valid && in_ready and delivered LATENCY cycles
// later, when nothing stalls, at out_valid && out_ready.  Full throughput while
// out_ready is high.
//
// Packing: element (r, c) of the input at in_data[(r*t + c)*IN_W +: IN_W],
// element (a, b) of the output at out_data[(a*R + b)*OUT_W +: OUT_W]
// (element 0 at the LSBs).

module winograd_transform_2d #(
    parameter int M         = 2,   // 2 or 4
    parameter int KIND      = 0,   // 0: B^T (input transform), 1: A^T (output transform)
    parameter int IN_W      = 8,   // input width
    parameter int IN_SIGNED = 1,   // 1: signed input, 0: unsigned
    parameter int MID_W     = 10,  // width of Z
    parameter int OUT_W     = 10,  // output width (two's complement)
    parameter int LATENCY   = 1,   // 0, 1 or 2 register stages
    // output rows (and columns): t for B^T, m for A^T -- derived, do not override
    parameter int R         = (KIND != 0) ? M : M + 2
) (
    input  logic                                  ap_clk,
    input  logic                                  ap_rst_n,
    input  logic                                  in_valid,
    output logic                                  in_ready,
    input  logic [(M + 2) * (M + 2) * IN_W - 1:0] in_data,
    output logic                                  out_valid,
    input  logic                                  out_ready,
    output logic [R * R * OUT_W - 1:0]            out_data
);
    localparam int T = M + 2;

    // ---- Z = X^T in: one 1-D transform per column c (Z is R x t)
    logic [R * T * MID_W - 1:0] z;  // element (i, c) at (i*t + c)*MID_W
    for (genvar c = 0; c < T; c++) begin : g_col
        logic [T * IN_W - 1:0]  col;
        logic [R * MID_W - 1:0] zcol;
        for (genvar r = 0; r < T; r++) begin : g_gather
            assign col[r * IN_W +: IN_W] = in_data[(r * T + c) * IN_W +: IN_W];
        end
        for (genvar i = 0; i < R; i++) begin : g_scatter
            assign z[(i * T + c) * MID_W +: MID_W] = zcol[i * MID_W +: MID_W];
        end
        winograd_transform_1d #(
            .M(M), .KIND(KIND), .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .OUT_W(MID_W)
        ) u_cols (
            .x(col), .y(zcol)
        );
    end

    // ---- optional register between the passes
    logic                       en;        // global stall: no stage moves while the output waits
    logic                       mid_valid;
    logic [R * T * MID_W - 1:0] z_q;
    if (LATENCY >= 2) begin : g_mid_reg
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) mid_valid <= 1'b0;
            else if (en) mid_valid <= in_valid;
            if (en) z_q <= z;
        end
    end else begin : g_mid_wire
        assign mid_valid = in_valid;
        assign z_q = z;
    end

    // ---- out = Z X: one 1-D transform per row i of Z ((Z X)^T = X^T Z^T)
    logic [R * R * OUT_W - 1:0] y;
    for (genvar i = 0; i < R; i++) begin : g_row
        winograd_transform_1d #(
            .M(M), .KIND(KIND), .IN_W(MID_W), .IN_SIGNED(1), .OUT_W(OUT_W)
        ) u_rows (
            .x(z_q[i * T * MID_W +: T * MID_W]), .y(y[i * R * OUT_W +: R * OUT_W])
        );
    end

    // ---- output register and handshake
    if (LATENCY >= 1) begin : g_out_reg
        assign en = !out_valid || out_ready;
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) out_valid <= 1'b0;
            else if (en) out_valid <= mid_valid;
            if (en) out_data <= y;
        end
    end else begin : g_out_wire
        logic unused_comb;  // combinational: no clock, reset or mid stage
        assign unused_comb = &{1'b0, ap_clk, ap_rst_n, mid_valid};
        assign en = out_ready;
        assign out_valid = in_valid;
        assign out_data = y;
    end
    assign in_ready = en;
endmodule
